from __future__ import annotations

import itertools

import pytest

from storage.types import ClipSpan, ProbeInfo
from tasks.keyframes import KeyframeConfig, extract_keyframes, frame_size
from tasks.probe import ProbeConfig, probe_video


def probe(path):
    info = probe_video(path, ProbeConfig())
    assert isinstance(info, ProbeInfo)
    return info


def test_keyframes_every_interval_with_true_times(samples: dict) -> None:
    path = samples["fractal_bars"].path  # the testsrc2 shot, 8.5-11.5 s, moves all the time
    kfs = extract_keyframes(path, probe(path), ClipSpan(0, 8.5, 11.5), KeyframeConfig())
    assert isinstance(kfs, list)
    assert [k.t for k in kfs] == pytest.approx([8.52, 10.52], abs=0.02)  # frames at 25 fps
    assert kfs[0].image.shape == (180, 320, 3)


def test_a_static_clip_gives_one_keyframe(samples: dict) -> None:
    path = samples["fractal_bars"].path  # colour bars, 4.5-7.5 s, still
    kfs = extract_keyframes(path, probe(path), ClipSpan(0, 4.5, 7.5), KeyframeConfig())
    assert isinstance(kfs, list) and len(kfs) == 1


def test_dropped_candidates_do_not_shift_timestamps(samples: dict) -> None:
    path = samples["night_harbour"].path
    cfg = KeyframeConfig(interval_s=1.0, min_change=0.0)
    every = extract_keyframes(path, probe(path), ClipSpan(0, 0.5, 4.5), cfg)
    assert [round(k.t) for k in every] == [1, 2, 3, 4]  # 0.52, 1.52, 2.52, 3.52 rounded
    assert all(b.t - a.t == pytest.approx(1.0, abs=0.05) for a, b in itertools.pairwise(every))


def test_frame_size_keeps_aspect_and_applies_rotation() -> None:
    info = ProbeInfo("mov", 1.0, 1920, 1080, 25.0, "h264", False, rotation=90)
    assert frame_size(info, 384) == (216, 384)
    info = ProbeInfo("mov", 1.0, 320, 180, 25.0, "h264", False)
    assert frame_size(info, 384) == (320, 180)  # never upscaled
