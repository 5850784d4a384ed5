"""The hardened ffmpeg input arguments: whitelists always, GPU decoding only by name, and
a fast analysis decode that stays true to the full one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks import media
from tasks.media import input_args
from tests.helpers import make_media


def test_input_is_a_file_url_behind_the_whitelists() -> None:
    args = input_args(Path("/tmp/-odd name.mp4"))
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert "-format_whitelist" in args
    assert args[-2:] == ["-i", "file:/tmp/-odd name.mp4"]  # never read as an option


def test_hwaccel_goes_before_the_input_and_only_known_names_pass() -> None:
    args = input_args(Path("/tmp/v.mp4"), fast=True, hwaccel="cuda")
    assert args.index("-hwaccel") < args.index("-i")
    assert args[args.index("-hwaccel") + 1] == "cuda"
    assert "-hwaccel" not in input_args(Path("/tmp/v.mp4"))
    with pytest.raises(ValueError, match="hwaccel"):
        input_args(Path("/tmp/v.mp4"), hwaccel="cuda -i /etc/passwd")


def test_the_fast_analysis_decode_does_not_drift_from_a_full_decode(tmp_path: Path) -> None:
    # Smooth fractal detail faded in from black, one long group of pictures: skipping the
    # loop filter on P-frames too (`all`) drifts 0.019 here; B-frames only, 0.0004.
    video = make_media(
        tmp_path / "zoom.mp4",
        "mandelbrot=s=320x180:r=24:start_scale=2.13,fade=t=in:st=0:d=1",
        10,
        ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
    )

    def thumbnails(fast: bool) -> np.ndarray:
        frames = media.stream_frames(video, 48, 27, timeout_s=60, fast=fast)
        return np.stack([f.rgb for f in frames]).astype(np.float32)

    exact, fast = thumbnails(False), thumbnails(True)
    assert exact.shape == fast.shape
    assert float((np.abs(fast - exact).mean(axis=(1, 2, 3)) / 255).max()) < 0.003


def test_reading_every_fourth_row_keeps_the_analysis_frames_and_their_change(
    tmp_path: Path,
) -> None:
    # A moving test card at 1080p, which the analysis decode reads every fourth row of.
    from tasks.transitions import row_step

    video = make_media(tmp_path / "hd.mp4", "testsrc2=s=1920x1080:r=25", 2)
    assert (row_step(1080), row_step(720), row_step(360)) == (4, 2, 1)

    def thumbnails(step: int) -> np.ndarray:
        frames = media.stream_frames(video, 48, 27, timeout_s=60, row_step=step)
        return np.stack([f.rgb for f in frames]).astype(np.float32) / 255

    every, fourth = thumbnails(1), thumbnails(4)
    assert every.shape == fourth.shape
    assert not np.array_equal(every, fourth)  # the rows read are not all the rows
    assert float(np.abs(fourth - every).mean()) < 0.01
    change = [np.abs(np.diff(x, axis=0)).mean(axis=(1, 2, 3)) for x in (every, fourth)]
    assert float(np.median(np.abs(change[1] - change[0]) / change[0])) < 0.05
    with pytest.raises(ValueError, match="power of two"):
        next(media.stream_frames(video, 48, 27, timeout_s=60, row_step=3))
