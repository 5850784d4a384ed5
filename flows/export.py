"""`capflow export`: the table as the files trainers read, incrementally.

Formats (each read back in tests with its users' library):

- `webdataset`: `{n:06d}.tar` shards cut by bytes, members in key order, per sample
  `{clip_id}.mp4`, `.json` (the row's metadata and the differential captions with their
  times), `.txt` (the caption), `.jpg`; beside each shard a parquet index and a
  `_stats.json` (video2dataset's layout).
- `jsonl`: ShareGPT4Video's release shape (`video_id`, `video_path`, `captions` as
  `[{"idx", "content"}]`: the summary at idx "-1", the differential captions at their
  keyframe times), plus capflow's metadata; videos under `videos/`.
- `csv`: Open-Sora's `path,text,num_frames,height,width,aspect_ratio,resolution,fps`, plus
  `aes` and `motion`; videos under `videos/`.
- `hf`: a video folder `train/` with `metadata.jsonl` that `datasets.load_dataset` reads.
- `parquet`: the rows; vectors only with `with_embeddings`.

Incremental: `manifest.json` at the output says which clip lies in which shard; a second
export writes only clips the manifest lacks. A shard is written under a temporary name,
then renamed (or uploaded), then entered in the manifest, so an interrupted export leaves
no partial shard visible and running it again finishes it. Clip files come from the media
sink (`clip_uri`) or, where none was written, are cut now from the source.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows import progress

FORMATS = ("webdataset", "jsonl", "csv", "hf", "parquet")
MANIFEST = "manifest.json"


class ExportError(ValueError):
    """An export that cannot start: one line naming the option."""


@dataclass(frozen=True)
class ExportSpec:
    format: str
    out: str  # a folder or s3://bucket/prefix
    where: str | None = None
    shard_bytes: int = 500 << 20
    with_embeddings: bool = False


@dataclass
class ExportReport:
    exported: int = 0
    already: int = 0
    shards: list[str] = field(default_factory=list)
    cut_now: int = 0


def parse_size(text: str) -> int:
    """'500MB', '2GB', '64k' -> bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "": 1}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    unit = t[-1] if t and t[-1] in "kmg" else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError as e:
        raise ExportError(f"--shard-size {text!r}: expected e.g. 500MB") from e
    return max(1, int(value * units[unit]))


def _metadata(row: dict[str, Any], with_embeddings: bool = False) -> dict[str, Any]:
    from flows.dataset import readable

    return readable(row, with_vectors=with_embeddings)


def sharegpt4video(row: dict[str, Any], video_path: str) -> dict[str, Any]:
    steps = row.get("differential_captions") or []
    captions = [{"idx": "-1", "content": row["caption"]}]
    captions += [{"idx": f"{s['t']:.3f}", "content": s["text"]} for s in steps]
    return {"video_id": row["clip_id"], "video_path": video_path, "captions": captions,
            "capflow": _metadata(row)}  # fmt: skip


def open_sora(row: dict[str, Any], path: str) -> dict[str, Any]:
    w, h = int(row["width"] or 0), int(row["height"] or 0)
    return {
        "path": path, "text": row["caption"], "num_frames": row["num_frames"],
        "height": h, "width": w, "aspect_ratio": round(h / w, 4) if w else None,
        "resolution": h * w, "fps": row["fps"], "aes": row.get("aesthetic_score"),
        "motion": row.get("motion_score"),
    }  # fmt: skip


class Output:
    """The export's folder or bucket prefix: files go in whole (temp name, then rename or
    upload), the manifest last."""

    def __init__(self, uri: str, s3_options: Any) -> None:
        from flows.media_sink import open_media
        from tasks.clip_files import MediaConfig

        self.uri = uri
        self.store = open_media(MediaConfig(uri=uri), s3_options)
        if not uri.startswith("s3://"):
            root = Path(uri).expanduser()
            try:
                root.mkdir(parents=True, exist_ok=True)
                probe = root / ".capflow-write-test"
                probe.write_text("")
                probe.unlink()
            except OSError as e:
                raise ExportError(f"--out {uri}: cannot write there ({e.strerror})") from None

    def put(self, name: str, data: Path | bytes) -> None:
        self.store.put(name, data)

    def read(self, name: str) -> bytes | None:
        return self.store.get(name)


class ClipBytes:
    """A clip's MP4 (and JPEG): from its clip file, or cut now from the source."""

    def __init__(self, config: Any, work: Path) -> None:
        self.config = config
        self.work = work
        self.cut_now = 0
        self._client: Any = None

    @property
    def client(self) -> Any:
        """One S3 client for the whole export, made when an s3:// clip first needs it."""
        if self._client is None:
            from storage.s3 import make_client

            self._client = make_client(self.config.s3.options())
        return self._client

    def _read_uri(self, uri: str) -> bytes | None:
        if uri.startswith("file://"):
            path = Path(uri.removeprefix("file://"))
            return path.read_bytes() if path.exists() else None
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            buf = io.BytesIO()
            self.client.download_fileobj(bucket, key, buf)
            return buf.getvalue()
        return None

    def mp4(self, row: dict[str, Any]) -> bytes:
        if row.get("clip_uri"):
            data = self._read_uri(row["clip_uri"])
            if data is not None:
                return data
        return self._cut(row)

    def jpg(self, row: dict[str, Any]) -> bytes | None:
        return self._read_uri(row["thumbnail_uri"]) if row.get("thumbnail_uri") else None

    def _cut(self, row: dict[str, Any]) -> bytes:
        from storage.local import is_local_bucket
        from storage.s3 import download_object
        from storage.types import ObjectRef, Rejection
        from tasks.clip_files import ClipCut, MediaConfig, cut_clip_files

        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            if is_local_bucket(row["bucket"]):
                source = Path(row["bucket"]) / row["key"]
            else:
                obj = ObjectRef(row["bucket"], row["key"], row["etag"], 0, None)  # type: ignore[arg-type]
                got = download_object(self.client, obj, Path(tmp) / "in")
                if isinstance(got, Rejection):
                    raise ExportError(f"{row['source']}: {got.detail}; run the curate flow again")
                source = got
            cut = ClipCut("clip", float(row["start_s"]), int(row["num_frames"]),
                          float(row["end_s"]) - float(row["start_s"]))  # fmt: skip
            media = self.config.media if self.config.media.enabled else MediaConfig(uri="x")
            media = media.__class__(**{**media.__dict__, "previews": False})
            errors = cut_clip_files(source, [cut], Path(tmp), media, fps=float(row["fps"] or 25))
            if errors.get("clip"):
                raise ExportError(f"cutting {row['clip_id']} failed: {errors['clip']}")
            self.cut_now += 1
            return (Path(tmp) / "clip.mp4").read_bytes()


class ShardWriter:
    """One shard of one format: samples go in as they come (their bytes counted), and
    `finish` publishes the shard whole."""

    def __init__(self, out: Output, name: str, spec: ExportSpec) -> None:
        self.out, self.name, self.spec = out, name, spec
        self.rows: list[dict[str, Any]] = []
        self.bytes = 0
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def add(self, row: dict[str, Any], mp4: bytes, jpg: bytes | None) -> None:
        self.rows.append(row)
        self.bytes += len(mp4)
        self._add(row, mp4, jpg)

    def _add(self, row: dict[str, Any], mp4: bytes, jpg: bytes | None) -> None:
        self.out.put(f"{self.videos}/{row['clip_id']}.mp4", mp4)

    videos = "videos"

    def finish(self) -> None:
        try:
            self._finish()
        finally:
            self.tmp.cleanup()

    def _finish(self) -> None:
        raise NotImplementedError


class WebDatasetShard(ShardWriter):
    def __init__(self, out: Output, name: str, spec: ExportSpec) -> None:
        super().__init__(out, name, spec)
        self.tar = tarfile.open(self.dir / f"{name}.tar", "w")  # noqa: SIM115 - closed in finish

    def _add(self, row: dict[str, Any], mp4: bytes, jpg: bytes | None) -> None:
        meta = json.dumps(_metadata(row, self.spec.with_embeddings)).encode()
        members = {"mp4": mp4, "txt": row["caption"].encode(), "json": meta}
        if jpg:
            members["jpg"] = jpg
        for ext in sorted(members):
            info = tarfile.TarInfo(f"{row['clip_id']}.{ext}")
            info.size = len(members[ext])
            self.tar.addfile(info, io.BytesIO(members[ext]))  # mtime 0: same clips, same bytes

    def _finish(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.tar.close()
        self.out.put(f"{self.name}.tar", self.dir / f"{self.name}.tar")
        index = [{**_metadata(r), "__key__": r["clip_id"]} for r in self.rows]
        pq.write_table(pa.Table.from_pylist(index), self.dir / "index.parquet")
        self.out.put(f"{self.name}.parquet", self.dir / "index.parquet")
        stats = {"shard": f"{self.name}.tar", "count": len(self.rows), "video_bytes": self.bytes}
        self.out.put(f"{self.name}_stats.json", json.dumps(stats).encode())


class JsonlShard(ShardWriter):
    def _finish(self) -> None:
        lines = [json.dumps(sharegpt4video(r, f"videos/{r['clip_id']}.mp4")) for r in self.rows]
        self.out.put(f"{self.name}.jsonl", ("\n".join(lines) + "\n").encode())


class CsvShard(ShardWriter):
    def _finish(self) -> None:
        import csv

        records = [open_sora(r, f"videos/{r['clip_id']}.mp4") for r in self.rows]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
        self.out.put(f"{self.name}.csv", buf.getvalue().encode())


class HfShard(ShardWriter):
    """`train/` with the videos and one metadata.jsonl, rewritten whole each shard (its
    lines for this shard's clips replaced, so a retried shard never doubles them)."""

    videos = "train"

    def _finish(self) -> None:
        ids = {r["clip_id"] for r in self.rows}
        previous = (self.out.read("train/metadata.jsonl") or b"").decode().splitlines()
        kept = [
            line for line in previous if line.strip() and json.loads(line)["clip_id"] not in ids
        ]
        for r in self.rows:
            kept.append(json.dumps({
                "file_name": f"{r['clip_id']}.mp4", "caption": r["caption"],
                "clip_id": r["clip_id"], "source": r["source"], "start_s": r["start_s"],
                "end_s": r["end_s"], "num_frames": r["num_frames"],
                "aesthetic_score": r.get("aesthetic_score"),
            }))  # fmt: skip
        self.out.put("train/metadata.jsonl", ("\n".join(kept) + "\n").encode())


class ParquetShard(ShardWriter):
    def _add(self, row: dict[str, Any], mp4: bytes, jpg: bytes | None) -> None:
        pass  # the rows only

    def _finish(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [_metadata(r, self.spec.with_embeddings) for r in self.rows]
        pq.write_table(pa.Table.from_pylist(rows), self.dir / "rows.parquet")
        self.out.put(f"{self.name}.parquet", self.dir / "rows.parquet")


WRITERS: dict[str, type[ShardWriter]] = {
    "webdataset": WebDatasetShard,
    "jsonl": JsonlShard,
    "csv": CsvShard,
    "hf": HfShard,
    "parquet": ParquetShard,
}


def export_clips(
    config: Any, spec: ExportSpec, on_clip: Callable[[int, int], None] | None = None
) -> ExportReport:
    """Write the clips not yet in the output's manifest, shard by shard."""
    from storage import schema
    from storage.lance_store import LanceStore

    if spec.format not in FORMATS:
        raise ExportError(f"--format {spec.format!r}: one of {', '.join(FORMATS)}")
    store = LanceStore(config.lance_uri, config.lance_storage_options())
    table = store.open_table(schema.CLIPS)
    if table is None:
        raise ExportError(f"no clips table at {config.lance_uri} (--lance-uri)")
    where = [f"({spec.where})"] if spec.where else []
    if "duplicate_of" in table.schema.names:
        where.append("duplicate_of IS NULL")  # duplicates never export
    try:
        rows = store.rows(schema.CLIPS, " AND ".join(where) or None)
    except (ValueError, RuntimeError) as e:
        raise ExportError(f"--where {spec.where!r}: {str(e).splitlines()[0][:200]}") from None
    rows.sort(key=lambda r: r["clip_id"])
    out = Output(spec.out, config.s3.options())
    manifest = json.loads(out.read(MANIFEST) or b"{}")
    if manifest and manifest.get("format") != spec.format:
        raise ExportError(
            f"--out {spec.out} holds a {manifest['format']} export, not {spec.format}"
        )
    manifest = manifest or {"format": spec.format, "shards": {}}
    done = {cid for ids in manifest["shards"].values() for cid in ids}
    todo = [r for r in rows if r["clip_id"] not in done]
    report = ExportReport(already=len(rows) - len(todo))
    work = Path(config.workdir) / "export"
    work.mkdir(parents=True, exist_ok=True)
    clips = ClipBytes(config, work)
    shard: ShardWriter | None = None

    def publish(shard: ShardWriter) -> None:
        shard.finish()
        manifest["shards"][shard.name] = [r["clip_id"] for r in shard.rows]
        out.put(MANIFEST, json.dumps(manifest, indent=1).encode())  # after the shard
        report.shards.append(shard.name)

    for row in todo:
        if shard is None:
            shard = WRITERS[spec.format](out, f"{len(manifest['shards']):06d}", spec)
        needs_video = spec.format != "parquet"
        mp4 = clips.mp4(row) if needs_video else b""
        jpg = clips.jpg(row) if spec.format == "webdataset" else None
        shard.add(row, mp4, jpg)
        report.exported += 1
        progress.emit("exported", f"{report.exported} {len(todo)}")
        if on_clip:
            on_clip(report.exported, len(todo))
        if shard.bytes >= spec.shard_bytes:
            publish(shard)
            shard = None
    if shard is not None:
        publish(shard)
    report.cut_now = clips.cut_now
    return report
