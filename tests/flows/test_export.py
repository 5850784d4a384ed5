"""`capflow export`: every format read back with the library its users read it with,
incremental by manifest, never a partial shard, duplicates left out, clip files cut on
the fly where none were written. Real flow, ffmpeg, LanceDB, a folder and SeaweedFS."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.curate import run_curate
from flows.export import ClipBytes, ExportSpec, export_clips
from storage import schema
from storage.lance_store import LanceStore
from tests.helpers import count_frames_of, curate_demo_videos, flow_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(prefect_api: None, samples: dict, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo's three videos from a folder, curated with clip files."""
    tmp = tmp_path_factory.mktemp("export-data")
    config = curate_demo_videos(samples, tmp)
    rows = LanceStore(config.lance_uri).rows(schema.CLIPS)
    kept = {r["clip_id"]: r for r in rows if r["duplicate_of"] is None}
    assert len(rows) == 6 and len(kept) == 5  # night_harbour's test pattern is a duplicate
    return config, kept


def test_webdataset_shards_read_back_with_webdataset(dataset: Any, tmp_path: Path) -> None:
    import webdataset as wds

    config, kept = dataset
    report = export_clips(config, ExportSpec("webdataset", str(tmp_path / "wds"), shard_bytes=1))
    assert report.exported == 5 and len(report.shards) == 5  # a clip's bytes fill a 1-byte shard
    shards = sorted(str(p) for p in (tmp_path / "wds").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert sorted(s["__key__"] for s in samples) == sorted(kept)
    for s in samples:
        row = kept[s["__key__"]]
        assert set(s) >= {"mp4", "json", "txt", "jpg"}
        meta = json.loads(s["json"])
        assert s["txt"].decode() == row["caption"] == meta["caption"]
        assert meta["differential_captions"] and "text_embedding" not in meta
        assert count_frames_of(s["mp4"], tmp_path) == row["num_frames"]
    with tarfile.open(shards[0]) as tar:
        names = tar.getnames()
        assert names == sorted(names)  # members in key order
    assert (tmp_path / "wds" / "000000.parquet").exists()
    assert json.loads((tmp_path / "wds" / "000000_stats.json").read_text())["count"] == 1
    manifest = json.loads((tmp_path / "wds" / "manifest.json").read_text())
    assert sorted(c for ids in manifest["shards"].values() for c in ids) == sorted(kept)


def test_jsonl_csv_hf_and_parquet_read_back_with_their_libraries(
    dataset: Any, tmp_path: Path
) -> None:
    import datasets
    import pandas as pd

    config, kept = dataset
    for fmt in ("jsonl", "csv", "hf", "parquet"):
        assert export_clips(config, ExportSpec(fmt, str(tmp_path / fmt))).exported == 5

    lines = [json.loads(x) for x in (tmp_path / "jsonl" / "000000.jsonl").read_text().splitlines()]
    for item in lines:
        row = kept[item["video_id"]]
        assert (tmp_path / "jsonl" / item["video_path"]).stat().st_size > 0
        assert item["captions"][0] == {"idx": "-1", "content": row["caption"]}
        steps = [(float(c["idx"]), c["content"]) for c in item["captions"][1:]]
        assert steps == [(round(d["t"], 3), d["text"]) for d in row["differential_captions"]]

    table = pd.read_csv(tmp_path / "csv" / "000000.csv")
    assert list(table.columns)[:8] == ["path", "text", "num_frames", "height", "width",
                                       "aspect_ratio", "resolution", "fps"]  # fmt: skip
    assert {"aes", "motion"} <= set(table.columns) and len(table) == 5
    assert all((tmp_path / "csv" / p).exists() for p in table["path"])

    # its cache under the test's folder: ~/.cache/huggingface kept one per run
    ds = datasets.load_dataset(str(tmp_path / "hf"), split="train", cache_dir=str(tmp_path / "c"))
    assert len(ds) == 5 and {"video", "caption", "clip_id"} <= set(ds.column_names)
    ds = ds.cast_column("video", datasets.Video(decode=False))
    assert sorted(ds["clip_id"]) == sorted(kept)

    rows = pd.read_parquet(tmp_path / "parquet" / "000000.parquet")
    assert len(rows) == 5 and "text_embedding" not in rows.columns
    with_vectors = ExportSpec("parquet", str(tmp_path / "pq2"), with_embeddings=True)
    export_clips(config, with_vectors)
    assert "text_embedding" in pd.read_parquet(tmp_path / "pq2" / "000000.parquet").columns


def test_an_export_is_incremental_and_an_interrupted_one_finishes(
    dataset: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, kept = dataset
    out = tmp_path / "wds"
    spec = ExportSpec("webdataset", str(out), shard_bytes=1, where="clip_index = 0")
    first = export_clips(config, spec)
    assert first.exported == 3  # one first clip per video

    real_mp4 = ClipBytes.mp4
    calls = {"n": 0}

    def flaky(self: ClipBytes, row: dict) -> bytes:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("the disk went away")
        return real_mp4(self, row)

    monkeypatch.setattr(ClipBytes, "mp4", flaky)
    everything = ExportSpec("webdataset", str(out), shard_bytes=1)
    with pytest.raises(OSError):
        export_clips(config, everything)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["shards"]) == 4  # the shard before the fault, and nothing half-done
    assert sorted(p.name for p in out.glob("*.tar")) == [f"{i:06d}.tar" for i in range(4)]
    monkeypatch.setattr(ClipBytes, "mp4", real_mp4)
    again = export_clips(config, everything)
    assert (again.exported, again.already) == (1, 4)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(c for ids in manifest["shards"].values() for c in ids) == sorted(kept)


def test_clips_without_files_are_cut_on_the_fly_and_exports_go_to_s3(
    prefect_api: None,
    local_s3: Any,
    s3_client: Any,
    bucket: str,
    samples: dict,
    tmp_path: Path,
) -> None:
    import webdataset as wds

    s3_client.upload_file(str(samples["sunset_meadow"].path), bucket, "raw/meadow.mp4")
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path, prefix="raw/")  # no media
    run_curate(config)
    rows = {r["clip_id"]: r for r in LanceStore(config.lance_uri).rows(schema.CLIPS)}
    assert all(r["clip_uri"] is None for r in rows.values())
    report = export_clips(config, ExportSpec("webdataset", f"s3://{bucket}/exports/wds"))
    assert report.cut_now == len(rows) == 2
    keys = {
        o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="exports/")["Contents"]
    }
    assert {"exports/wds/000000.tar", "exports/wds/manifest.json"} <= keys
    local_tar = tmp_path / "000000.tar"
    s3_client.download_file(bucket, "exports/wds/000000.tar", str(local_tar))
    for s in wds.WebDataset([str(local_tar)], shardshuffle=False):
        assert count_frames_of(s["mp4"], tmp_path) == rows[s["__key__"]]["num_frames"]


def test_bad_export_options_are_one_line(dataset: Any, tmp_path: Path) -> None:
    config, _ = dataset
    runner = CliRunner()
    base = ["export", "--lance-uri", config.lance_uri, "--out", str(tmp_path / "x")]
    bad = runner.invoke(app, [*base, "--format", "zip"])
    assert bad.exit_code == 2 and "--format" in bad.output and "webdataset" in bad.output
    good = runner.invoke(app, [*base, "--format", "jsonl", "--min-aesthetic", "0"])
    told = " ".join(good.output.split())  # the console wraps at its width; a long path wraps
    assert good.exit_code == 0 and "exported 5 clip(s) in 1 new shard(s)" in told, told
    again = runner.invoke(app, [*base, "--format", "jsonl"])
    said = " ".join(again.output.split())
    assert "exported 0 clip(s) in 0 new shard(s)" in said and "5 were there" in said, said
    from flows.export import ExportError

    with pytest.raises(ExportError, match=r"--where"):
        export_clips(config, ExportSpec("jsonl", str(tmp_path / "y"), where="nosuch > 1"))
    with pytest.raises(ExportError, match=r"--out /proc/capflow: cannot write"):
        export_clips(config, ExportSpec("jsonl", "/proc/capflow"))
