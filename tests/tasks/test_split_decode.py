"""A long video measured as parts decoded side by side is measured exactly as in one pass,
and parts that do not agree where they meet are never joined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage.types import ProbeInfo
from tasks import media
from tasks.transitions import FrameMeter, Measurements, TransitionConfig, find_transitions


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flows.samples import make_video

    out = tmp_path_factory.mktemp("split") / "long.mp4"
    shots = [("sunset", 9), ("meadow", 12), ("night_sea", 13), ("test_pattern", 12)]
    return make_video(out, shots, ["dissolve:1", "cut", "cut"]).path


def measure(path: Path, cfg: TransitionConfig) -> tuple[ProbeInfo, Measurements]:
    from tasks.probe import ProbeConfig, probe_video
    from tasks.transitions import measure_video

    probe = probe_video(path, ProbeConfig())
    assert isinstance(probe, ProbeInfo)
    m = measure_video(path, probe, cfg)
    assert isinstance(m, Measurements)
    return probe, m


def test_parts_side_by_side_measure_what_one_pass_does(long_video: Path) -> None:
    from tasks.split_decode import plan_parts

    one_pass = TransitionConfig(decode_parts=1)
    split = TransitionConfig(decode_parts=4, split_min_s=10.0)
    probe, whole = measure(long_video, one_pass)
    plan = plan_parts(long_video, probe, split)
    assert len(plan) == 4
    # Each later part starts just after a keyframe (ffmpeg's seek goes back to the one
    # before the time it is given: anywhere else, the frames between are decoded twice).
    keys = media.keyframe_times(long_video, 0.0, 45.0, probe.stream_index, 30.0)
    for part in plan[1:]:
        assert min(abs(part.decode_from - 0.5 / 25 - k) for k in keys) < 1e-3, (part, keys)
    _, parts = measure(long_video, split)

    assert len(parts.times) == len(whole.times) == 45 * 25
    assert parts.times == pytest.approx(whole.times, abs=1e-4)
    assert parts.change == whole.change
    assert parts.evidence == whole.evidence
    assert np.array_equal(parts.features, whole.features)
    assert np.array_equal(parts.profiles, whole.profiles)
    assert np.array_equal(parts.pictures, whole.pictures)

    def found(m: Measurements) -> list[tuple[str, int, int]]:
        return [(t.kind, t.start_frame, t.end_frame) for t in find_transitions(m, one_pass)]

    assert found(parts) == found(whole)
    assert [k for k, *_ in found(whole)] == ["gradual", "cut", "cut"]


def picture(rng: np.random.Generator) -> np.ndarray:
    """Broad patches of colour at the analysis size (per-pixel noise is no picture)."""
    return np.kron(rng.integers(0, 255, (3, 4, 3)), np.ones((9, 12, 1))).astype(np.uint8)


def meter_over(frames: list[np.ndarray], times: list[float], first_index: int) -> Measurements:
    meter = FrameMeter(50.0, TransitionConfig(), first_index=first_index)  # network: every 2nd
    for t, f in zip(times, frames, strict=True):
        meter.push(t, f)
    return meter.finish()


def test_parts_whose_frames_disagree_are_not_joined() -> None:
    """A part whose decode started a frame off (a seek that lands elsewhere than its times
    say) would shift every later frame, and one whose network frames fall on the other
    frames than one pass's (every 2nd frame at 50 fps) would feed the network other
    features: the join refuses both, and one pass measures."""
    from tasks.split_decode import Measured, Part, join_parts

    rng = np.random.default_rng(3)
    scenes = [picture(rng) for _ in range(6)]
    frames = [
        np.clip(scenes[i // 40] + rng.normal(0, 2, scenes[0].shape), 0, 255).astype(np.uint8)
        for i in range(240)
    ]
    times = [i / 50 for i in range(240)]
    cfg = TransitionConfig()
    parts = [Part(0.0, 0.0, 2.8), Part(1.5, 2.3, None)]  # frames 0-139; 75 on, kept from 115
    first = meter_over(frames[:140], times[:140], 0)
    whole = meter_over(frames, times, 0)

    right = meter_over(frames[75:], times[75:], 75)
    joined = join_parts(parts, [Measured(first, 0), Measured(right, 75)], 50.0, cfg)
    assert joined is not None
    assert joined.change == whole.change and joined.evidence == whole.evidence
    assert np.array_equal(joined.features, whole.features)

    # The same frames, each labelled with the next frame's time.
    off = meter_over(frames[75:], [*times[76:], 240 / 50], 76)
    assert join_parts(parts, [Measured(first, 0), Measured(off, 76)], 50.0, cfg) is None
    out_of_step = meter_over(frames[75:], times[75:], 76)
    assert join_parts(parts, [Measured(first, 0), Measured(out_of_step, 76)], 50.0, cfg) is None


def test_frame_times_stay_exact_past_100_seconds(tmp_path: Path) -> None:
    """showinfo's pts_time has six significant digits (1 ms past 100 s, whole seconds past
    100,000 s); the times come from its integer pts and time base instead."""
    from tests.helpers import make_media

    video = make_media(tmp_path / "long.mp4", "testsrc2=s=64x36:r=30", 101)
    times = [f.t for f in media.stream_frames(video, 48, 27, timeout_s=120)]
    assert len(times) == 3030
    assert np.max(np.abs(np.asarray(times) - np.arange(3030) / 30)) < 1e-6


def test_a_video_cut_short_is_measured_as_one_pass_would(tmp_path: Path) -> None:
    """A Matroska file cut off within its first shot (a busy test card, most of the bytes):
    its header still says 45 s, so it is planned in parts, and the later parts find nothing
    where they seek. One pass then keeps every frame that decoded before the damage, as it
    does for any damaged tail."""
    from flows.samples import make_video
    from tasks.split_decode import plan_parts

    shots = [("test_pattern", 12), ("sunset", 9), ("meadow", 12), ("night_sea", 12)]
    whole = make_video(tmp_path / "long.mkv", shots, ["dissolve:1", "cut", "cut"]).path
    cut_short = tmp_path / "cut_short.mkv"
    cut_short.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.4)])

    split = TransitionConfig(decode_parts=4, split_min_s=10.0)
    probe, parts = measure(cut_short, split)
    assert len(plan_parts(cut_short, probe, split)) == 4
    _, one_pass = measure(cut_short, TransitionConfig(decode_parts=1))
    assert 50 < len(parts.times) < 12 * 25
    assert parts.times == one_pass.times and parts.change == one_pass.change
    assert np.array_equal(parts.features, one_pass.features)
