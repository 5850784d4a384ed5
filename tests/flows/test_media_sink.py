"""Clip files as a sink of landing: each landed clip's MP4 (its exact frames), JPEG
thumbnail and WebP preview, named by clip id, written once, deleted with the clip; a
failed encode quarantines the clip, never the run. Real flow, ffmpeg, a folder and S3."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from tasks.clip_files import has_encoder
from tests.helpers import count_frames, flow_config

pytestmark = pytest.mark.slow


def local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def test_landed_clips_get_their_files_once_and_lose_them_with_the_clip(
    prefect_api: None, samples: dict, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("night_harbour", "sunset_meadow"):
        shutil.copy(samples[name].path, videos / f"{name}.mp4")
    out = tmp_path / "media"
    config = flow_config("", str(videos), tmp_path, media={"uri": str(out)})
    run_curate(config)
    rows = LanceStore(config.lance_uri).rows(schema.CLIPS)
    assert len(rows) == 4
    for r in rows:
        clip = local(r["clip_uri"])
        assert clip == out / "clips" / f"{r['clip_id']}.mp4"
        assert count_frames(clip) == r["num_frames"]
        assert local(r["thumbnail_uri"]).read_bytes()[:2] == b"\xff\xd8"  # a JPEG
        if has_encoder("libwebp"):  # the bundled static ffmpeg may have none
            assert local(r["preview_uri"]).read_bytes()[8:12] == b"WEBP"
        assert r["encode_settings"].startswith("libx264 crf=20")
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert len(written) == (12 if has_encoder("libwebp") else 8)
    assert not list((tmp_path / "work" / "media-staging").glob("*.mp4"))  # staging emptied

    # Done again from scratch: the same names, nothing rewritten.
    run_curate(config.model_copy(update={"reprocess": True}))
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == written

    # A re-encode of the same span need not come out byte for byte the same: one whose size
    # differs (here: the landed file one MP4 box longer) leaves the landed clip alone...
    clip = out / "clips" / f"{rows[0]['clip_id']}.mp4"
    with clip.open("ab") as f:
        f.write(b"\x00\x00\x00\x08free")
    grown = (clip.stat().st_size, clip.stat().st_mtime_ns)
    run_curate(config.model_copy(update={"reprocess": True}))
    assert (clip.stat().st_size, clip.stat().st_mtime_ns) == grown
    # ... and other encode settings make every clip file again.
    clips = {p: p.stat().st_mtime_ns for p in (out / "clips").iterdir()}
    crf23 = replace(config.media, crf=23)
    run_curate(config.model_copy(update={"reprocess": True, "media": crf23}))
    rows = LanceStore(config.lance_uri).rows(schema.CLIPS)
    assert {r["encode_settings"].split()[1] for r in rows} == {"crf=23"}
    remade = {p: p.stat().st_mtime_ns for p in (out / "clips").iterdir()}
    assert remade.keys() == clips.keys() and len(remade) == 4
    assert all(remade[p] != clips[p] for p in clips)
    assert clip.stat().st_size < grown[0]  # a new encode, not the grown file

    # One video replaced, the other deleted: their old files go, the new ones come.
    shutil.copy(samples["fractal_bars"].path, videos / "night_harbour.mp4")
    (videos / "sunset_meadow.mp4").unlink()
    run_curate(config)
    rows = LanceStore(config.lance_uri).rows(schema.CLIPS)
    now = {p.name for p in (out / "clips").iterdir()}
    assert now == {f"{r['clip_id']}.mp4" for r in rows} and len(rows) == 2
    assert {p.stem for p in (out / "thumbs").iterdir()} == {r["clip_id"] for r in rows}


def test_clip_files_go_to_s3_and_a_failed_encode_quarantines_the_clip(
    prefect_api: None,
    local_s3: Any,
    s3_client: Any,
    bucket: str,
    samples: dict,
    tmp_path: Path,
) -> None:
    s3_client.upload_file(str(samples["sunset_meadow"].path), bucket, "raw/meadow.mp4")
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path, prefix="raw/",
                         media={"uri": f"s3://{bucket}/media/"})  # fmt: skip
    run_curate(config)
    rows = LanceStore(config.lance_uri).rows(schema.CLIPS)
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="media/")["Contents"]}
    assert len(rows) == 2 and keys == {
        f"media/{kind}/{r['clip_id']}.{ext}"
        for r in rows for kind, ext in (("clips", "mp4"), ("thumbs", "jpg"), ("previews", "webp"))
    }  # fmt: skip
    assert all(r["clip_uri"] == f"s3://{bucket}/media/clips/{r['clip_id']}.mp4" for r in rows)

    broken = config.model_copy(update={
        "lance_uri": str(tmp_path / "lance2"), "workdir": tmp_path / "work2",
        "media": config.media.__class__(uri=str(tmp_path / "m2"), codec="no_such_encoder"),
    })  # fmt: skip
    report = run_curate(broken)
    assert report["landed"] == 0 and report["failed"] == 0 and report["quarantined"] == 1
    reasons = {r["reason"] for r in LanceStore(broken.lance_uri).rows(schema.QUARANTINE)}
    assert reasons == {"encode_failed"}
