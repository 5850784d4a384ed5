"""The clip-file sink: each landed clip's MP4, thumbnail and preview under the media
location (`media.uri`: a folder or s3://bucket/prefix), as `clips/{clip_id}.mp4`,
`thumbs/{clip_id}.jpg`, `previews/{clip_id}.webp`.

It runs before the LanceDB sink, so the rows it fills (`clip_uri`, `thumbnail_uri`,
`preview_uri`, `encode_settings`) land with them. Names are the clip ids, so a re-run
writes nothing new: a clip file is left alone when the clip landed before with the same
encode settings and frame count (a clip id is the object's version and the span, so that
is the same clip), a thumbnail or preview when it is there at its size. Not the clip file
by its size: re-encoding one span is not always byte-identical (one CI run rewrote one
clip of four at another size on `--reprocess`; twelve runs here did not), and an NVENC
encode promises no such thing at all. The files of clips
an object no longer has (superseded, pruned) are deleted with them. The clip files were
cut during preparation from the file already downloaded for analysis, so no source is
fetched twice. A clip whose staged file is gone (a run resumed from cached preparation
after its workdir was cleared) lands without a clip file, with a warning; `--reprocess`
cuts it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from flows.landing import LandingBatch
from storage.lance_store import LanceStore
from tasks.clip_files import MediaConfig, thumbnail_jpeg

log = logging.getLogger(__name__)
KINDS = {
    "clip": ("clips", ".mp4"),
    "thumbnail": ("thumbs", ".jpg"),
    "preview": ("previews", ".webp"),
}


class MediaStore(Protocol):
    """Where clip files live: put (a local file or bytes), get, size, delete, by name
    (`clips/{id}.mp4`). A put is whole: nothing half-written shows under the name."""

    def put(self, name: str, data: Path | bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...
    def size(self, name: str) -> int | None: ...
    def delete(self, name: str) -> None: ...
    def uri(self, name: str) -> str: ...


class FolderMedia:
    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser().resolve()

    def put(self, name: str, data: Path | bytes) -> None:
        import shutil

        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        if isinstance(data, Path):
            shutil.copyfile(data, part)
        else:
            part.write_bytes(data)
        part.replace(target)

    def get(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.exists() else None

    def size(self, name: str) -> int | None:
        path = self.root / name
        return path.stat().st_size if path.exists() else None

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def uri(self, name: str) -> str:
        return (self.root / name).as_uri()


class S3Media:
    """A bucket prefix; the client is made where it is used (the sink travels to
    process-based task runners, a boto3 client does not pickle)."""

    def __init__(self, uri: str, options: Any) -> None:
        self.bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.options = options
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from storage.s3 import make_client

            self._client = make_client(self.options)
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    def put(self, name: str, data: Path | bytes) -> None:
        if isinstance(data, Path):
            self.client.upload_file(str(data), self.bucket, self.prefix + name)
        else:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def get(self, name: str) -> bytes | None:
        import io

        from botocore.exceptions import ClientError

        buf = io.BytesIO()
        try:
            self.client.download_fileobj(self.bucket, self.prefix + name, buf)
        except ClientError:
            return None
        return buf.getvalue()

    def size(self, name: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + name)
        except ClientError:
            return None
        return int(head["ContentLength"])

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"


def open_media(cfg: MediaConfig, s3_options: Any) -> MediaStore:
    return S3Media(cfg.uri, s3_options) if cfg.uri.startswith("s3://") else FolderMedia(cfg.uri)


def _existing(path: Path) -> Path | None:
    return path if path.exists() else None


def name_of(kind: str, clip_id: str) -> str:
    folder, suffix = KINDS[kind]
    return f"{folder}/{clip_id}{suffix}"


class MediaSink:
    name = "media"

    def __init__(
        self, store: LanceStore, cfg: MediaConfig, staging: Path, media: MediaStore
    ) -> None:
        self.store, self.cfg, self.staging, self.media = store, cfg, staging, media

    def _publish(
        self, kind: str, clip_id: str, data: Path | bytes | None, same: bool = False
    ) -> str | None:
        """Put a clip's file unless it is there already and is `same` or at its size; its
        URI, or None when there is none."""
        name = name_of(kind, clip_id)
        have = self.media.size(name)
        if data is not None and not (same and have is not None):
            size = data.stat().st_size if isinstance(data, Path) else len(data)
            if have != size:
                self.media.put(name, data)
                have = size
        return self.media.uri(name) if have is not None else None

    def write(self, batch: LandingBatch) -> None:
        landing = {r.clip_id: r for r in batch.rows}
        clips = {c.clip_id: c for v in batch.videos for c in v.clips}
        landed = self.store.clips_of(batch.objects(), ["encode_settings", "num_frames"])
        gone = set(landed) - set(landing)
        settings = self.cfg.settings()
        for clip_id, row in landing.items():
            staged = {s: self.staging / f"{clip_id}{s}" for s in (".mp4", ".webp")}
            before = landed.get(clip_id, {})
            same = before.get("encode_settings") == settings
            same = same and before.get("num_frames") == row.num_frames
            row.clip_uri = self._publish("clip", clip_id, _existing(staged[".mp4"]), same)
            if row.clip_uri is None:
                log.warning("no clip file for %s (staged file gone, source not refetched)", clip_id)
                continue
            row.encode_settings = settings
            row.preview_uri = self._publish("preview", clip_id, _existing(staged[".webp"]))
            clip = clips.get(clip_id)
            if clip is not None and clip.keyframes:
                middle = clip.keyframes[len(clip.keyframes) // 2]
                jpeg = thumbnail_jpeg(middle.image, self.cfg.thumbnail_side)
                row.thumbnail_uri = self._publish("thumbnail", clip_id, jpeg)
        self._delete(gone)
        for clip_id in clips:  # landed or not, the staged copies are done with
            for suffix in (".mp4", ".webp"):
                (self.staging / f"{clip_id}{suffix}").unlink(missing_ok=True)

    def _delete(self, clip_ids: set[str]) -> None:
        for clip_id in sorted(clip_ids):
            for kind in KINDS:
                self.media.delete(name_of(kind, clip_id))

    def prune(self, objects: Sequence[tuple[str, str]]) -> None:
        if objects:
            self._delete(self.store.clip_ids_of(objects))
