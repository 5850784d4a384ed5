"""Clip files are frame-accurate: a clip cut from a source with B-frames and open GOPs, at
23.976, 25, 29.97 and 60 fps and at a variable frame rate, holds exactly the span's
frames, its first and last are the span's (and not their neighbours), and audio is kept.
Real ffmpeg on real encoded video; frames compared through the pipeline's own decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks import media
from tasks.clip_files import ClipCut, MediaConfig, cut_clip_files, has_encoder
from tests.helpers import stream_types

W, H = 64, 36


def encode_source(out: Path, rate: str, vf: str | None = None) -> Path:
    """testsrc2 (its picture changes every frame) with a tone, B-frames and open GOPs."""
    argv = [media.ffmpeg_path(), "-nostdin", "-v", "error",
            "-f", "lavfi", "-i", f"testsrc2=s=320x180:r={rate}",
            "-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", "6"]  # fmt: skip
    if vf:
        argv += ["-vf", vf, "-fps_mode", "passthrough"]
    argv += ["-c:v", "libx264", "-bf", "3", "-g", "30", "-x264-params", "open-gop=1",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", str(out)]  # fmt: skip
    assert media.run(argv, timeout_s=120).returncode == 0
    return out


def frames_of(path: Path) -> tuple[list[float], list[np.ndarray]]:
    times, images = [], []
    for frame in media.stream_frames(path, W, H, timeout_s=120):
        times.append(frame.t)
        images.append(np.asarray(frame.rgb, dtype=np.float32))
    return times, images


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


SOURCES = {
    "23.976": ("24000/1001", None),
    "25": ("25", None),
    "29.97": ("30000/1001", None),
    "60": ("60", None),
    "variable": ("30", "setpts='if(lt(N,60),N/30,2+(N-60)/15)/TB'"),
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_a_clip_holds_exactly_the_span_s_frames(name: str, tmp_path: Path) -> None:
    rate, vf = SOURCES[name]
    src = encode_source(tmp_path / "src.mp4", rate, vf)
    times, images = frames_of(src)
    a, b = len(times) // 3 + 1, 2 * len(times) // 3 + 2  # frames [a, b): mid-GOP both ends
    cut = ClipCut("c1", times[a], b - a, times[b] - times[a])
    fps = (len(times) - 1) / (times[-1] - times[0])
    errors = cut_clip_files(src, [cut], tmp_path / "out", MediaConfig(uri="x"), fps=fps)
    assert errors == {"c1": None}
    out_times, out = frames_of(tmp_path / "out" / "c1.mp4")
    assert len(out) == b - a, (len(out), b - a)
    assert mad(out[0], images[a]) < mad(out[0], images[a - 1])
    assert mad(out[-1], images[b - 1]) < mad(out[-1], images[b])
    assert mad(out[0], images[a]) < 6 and mad(out[-1], images[b - 1]) < 6  # re-encoded, alike
    if vf:  # the durations of the source's frames survive
        assert np.allclose(np.diff(out_times), np.diff(times[a:b]), atol=2e-3)
    assert stream_types(tmp_path / "out" / "c1.mp4") == ["video", "audio"]
    if has_encoder("libwebp"):
        assert (tmp_path / "out" / "c1.webp").stat().st_size > 0


def test_the_clips_of_a_source_are_cut_in_one_process_each_exact(tmp_path: Path) -> None:
    src = encode_source(tmp_path / "src.mp4", "25")
    times, images = frames_of(src)
    spans = [(3, 40), (41, 80), (90, 149)]
    cuts = [
        ClipCut(f"c{i}", times[s], e - s, times[e] - times[s]) for i, (s, e) in enumerate(spans)
    ]
    errors = cut_clip_files(src, cuts, tmp_path / "out", MediaConfig(uri="x", previews=False))
    assert errors == {"c0": None, "c1": None, "c2": None}
    for i, (s, e) in enumerate(spans):
        _, out = frames_of(tmp_path / "out" / f"c{i}.mp4")
        assert len(out) == e - s
        assert mad(out[0], images[s]) < mad(out[0], images[s - 1])


def test_a_failed_cut_is_reported_per_clip_and_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    errors = cut_clip_files(
        bad, [ClipCut("c", 0.0, 10, 0.4)], tmp_path / "out", MediaConfig(uri="x")
    )
    assert errors["c"] and not list((tmp_path / "out").iterdir())
