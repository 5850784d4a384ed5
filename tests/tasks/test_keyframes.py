from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage.types import ClipSpan, ProbeInfo
from tasks.keyframes import KeyframeConfig, extract_keyframes, frame_size, select_keyframes
from tasks.media import Frame
from tasks.probe import ProbeConfig, probe_video
from tests.helpers import make_media


def probe(path: Path) -> ProbeInfo:
    info = probe_video(path, ProbeConfig())
    assert isinstance(info, ProbeInfo)
    return info


def keyframes(path: Path, start: float, end: float, **cfg: object) -> list:
    kfs = extract_keyframes(path, probe(path), ClipSpan(0, start, end), KeyframeConfig(**cfg))
    assert isinstance(kfs, list)
    return kfs


def test_a_static_clip_gives_one_or_two_keyframes(samples: dict) -> None:
    kfs = keyframes(samples["fractal_bars"].path, 4.5, 7.5)  # colour bars, still
    assert 1 <= len(kfs) <= 2
    assert kfs[0].t == pytest.approx(4.52, abs=0.02)


def test_distinct_scenes_keep_one_keyframe_per_scene_change(samples: dict) -> None:
    # Whole video: fractal 0-4 s, bars 4-8 s, test pattern 8-12 s; candidates every 2 s.
    kfs = keyframes(samples["fractal_bars"].path, 0.0, 12.0)
    times = [k.t for k in kfs]
    assert 4.0 in times and 8.0 in times  # a keyframe at each scene change
    assert 6.0 not in times  # the still bars at 6 s look like those at 4 s: dropped
    assert all(k.feature_name == "thumbnail" for k in kfs)


def test_timestamps_are_true_pts_not_index_times_interval(samples: dict) -> None:
    kfs = keyframes(samples["fractal_bars"].path, 0.0, 12.0)
    times = [k.t for k in kfs]
    assert times == sorted(times)
    # After the dropped 6 s candidate, index x 2 s would say 6.0 for the 4th keyframe.
    assert times[3] == pytest.approx(8.0) and times[3] != 3 * 2.0


def test_the_tail_frame_is_added_when_a_whole_interval_is_left(tmp_path: Path) -> None:
    video = make_media(tmp_path / "still.mp4", "smptehdbars=s=160x90:r=25", 5)
    kfs = keyframes(video, 0.0, 5.0)
    assert [round(k.t, 2) for k in kfs] == [0.0, 4.96]  # one kept -> the last frame too


def test_leading_black_frames_are_skipped(tmp_path: Path) -> None:
    video = make_media(
        tmp_path / "black-start.mp4",
        "testsrc2=s=160x90:r=25,drawbox=c=black:t=fill:enable='lt(t,0.6)'",
        5,
    )
    kfs = keyframes(video, 0.0, 5.0)
    assert kfs[0].t == pytest.approx(0.6, abs=0.05)
    assert float(kfs[0].image.std()) > 2


def test_selection_compares_with_the_last_kept_keyframe() -> None:
    class Fixed:
        name = "fixed"

        def embed(self, images: list[np.ndarray]) -> np.ndarray:
            return np.stack([img[0, 0, :2].astype(np.float32) / 100 for img in images])

    def img(a: float, b: float) -> np.ndarray:
        v = np.zeros((4, 4, 3), dtype=np.uint8)
        v[0, 0, :2] = [round(a * 100), round(b * 100)]
        return v

    # Each step turns 20 degrees: against the previous candidate every step is similar
    # (cos 20 = 0.94), against the last *kept* one the drift adds up and is noticed.
    angles = np.radians([0, 20, 40, 60, 80])
    frames = [Frame(float(i), img(np.cos(a), np.sin(a))) for i, a in enumerate(angles)]
    kept = select_keyframes(frames, Fixed(), 0.93)
    assert [k.t for k in kept] == [0.0, 2.0, 4.0]


def test_frames_are_capped_at_max_side_and_rotation_applies() -> None:
    info = ProbeInfo("mov", 1.0, 1920, 1080, 25.0, "h264", False, rotation=90)
    assert frame_size(info, 1024) == (576, 1024)
    info = ProbeInfo("mov", 1.0, 320, 180, 25.0, "h264", False)
    assert frame_size(info, 1024) == (320, 180)  # never upscaled


def test_clip_features_choose_keyframes_through_the_same_code_path(
    samples: dict, tmp_path: Path
) -> None:
    from tests.models_clip import build_tiny_clip

    model = build_tiny_clip(tmp_path / "clip")
    kfs = keyframes(
        samples["fractal_bars"].path, 0.0, 12.0, clip_model=str(model), similarity_threshold=0.999
    )
    assert kfs and all(k.feature_name == f"clip:{model}" for k in kfs)
    assert all(k.feature.shape == (32,) for k in kfs)
    assert np.allclose([np.linalg.norm(k.feature) for k in kfs], 1.0, atol=1e-4)
