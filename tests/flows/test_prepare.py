"""Preparation of one object, as a plain function on the real S3: cheap refusals come
before any decode, and what the rows record is what was decoded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from flows.prepare import prepare_video
from storage.s3 import list_videos
from storage.types import Caption, RejectReason
from tests.helpers import flow_config, make_media

pytestmark = pytest.mark.slow


def _prepare(local_s3: Any, s3_client: Any, bucket: str, tmp_path: Path, key: str) -> Any:
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path)
    [obj] = [o for o in list_videos(s3_client, bucket) if o.key == key]
    return prepare_video(obj, config, config.clip_stages()), config


def test_a_tiny_fast_long_video_is_refused_from_the_probe_without_a_decode(
    local_s3: Any, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"]
    tiny = make_media(tmp_path / "tiny.mp4", "color=c=red:s=2x2:r=240", 120, x264)
    s3_client.upload_file(str(tiny), bucket, "tiny.mp4")
    started = time.monotonic()
    video, _ = _prepare(local_s3, s3_client, bucket, tmp_path, "tiny.mp4")
    took = time.monotonic() - started
    [refused] = video.rejections
    assert (refused.stage, refused.reason) == ("probe", RejectReason.OUT_OF_BOUNDS)
    assert "quality.min_width" in refused.detail  # it names the setting
    assert "transitions" not in video.seconds and video.decoded_frames == 0  # never decoded
    assert took < 10


def test_the_rows_record_the_decoded_duration_not_the_declared_one(
    local_s3: Any, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    from flows.rows import clip_row

    whole = make_media(tmp_path / "whole.mp4", "testsrc2=s=320x180:r=25", 10,
                       ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                        "-g", "25", "-movflags", "+faststart"])  # fmt: skip
    data = whole.read_bytes()
    s3_client.put_object(Bucket=bucket, Key="cut.mp4", Body=data[: len(data) * 6 // 10])
    video, _ = _prepare(local_s3, s3_client, bucket, tmp_path, "cut.mp4")
    assert video.probe.duration_s == pytest.approx(10.0, abs=0.1)  # what the header claims
    assert video.decoded_duration_s < 8.0  # what is there
    clip = video.alive_clips()[0]
    clip.caption = Caption("a test caption with enough words", [], "describe", "diffsw", "v")
    row = clip_row(clip, "minilm", "test", "run")
    assert row.source_duration_s == video.decoded_duration_s
    assert row.num_frames == pytest.approx(25 * clip.span.duration_s, abs=2)
