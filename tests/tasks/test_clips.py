from __future__ import annotations

from itertools import pairwise

import pytest

from storage.types import Transition
from tasks.clips import ClipConfig, cut_clips, shot_ranges
from tasks.transitions import ShotAnalysis


def analysis(seconds: float, transitions: list[Transition], fps: float = 25.0) -> ShotAnalysis:
    n = int(seconds * fps)
    times = [i / fps for i in range(n)]
    motion = [0.01 * (i % 3) for i in range(n)]
    return ShotAnalysis(times, motion, [(0.0, 0.0)] * n, transitions)


def test_transition_frames_belong_to_no_shot() -> None:
    a = analysis(
        10,
        [Transition("cut", 100, 100, 4.0, 4.0, 1), Transition("gradual", 150, 174, 6.0, 6.96, 1)],
    )
    assert shot_ranges(a) == [(0, 99), (100, 149), (175, 249)]


def test_clips_are_trimmed_by_the_margin() -> None:
    clips = cut_clips(
        analysis(10, [Transition("cut", 125, 125, 5.0, 5.0, 1)]), ClipConfig(margin_s=0.5)
    )
    assert [(c.start_s, c.end_s) for c in clips] == [(0.5, 4.5), (5.5, 9.5)]
    assert [c.index for c in clips] == [0, 1]


def test_short_shots_are_dropped() -> None:
    a = analysis(10, [Transition("cut", 50, 50, 2.0, 2.0, 1)])  # a 2 s shot: 1 s after trimming
    clips = cut_clips(a, ClipConfig(margin_s=0.5, min_clip_s=2.0))
    assert [(c.start_s, c.end_s) for c in clips] == [(2.5, 9.5)]


def test_long_shots_are_split_into_pieces_at_most_max() -> None:
    clips = cut_clips(analysis(100, []), ClipConfig(margin_s=0.5, max_clip_s=30))
    assert len(clips) == 4
    assert all(c.duration_s <= 30 + 1e-6 for c in clips)
    assert clips[0].start_s == 0.5 and clips[-1].end_s == pytest.approx(99.5)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in pairwise(clips))


def test_motion_score_is_the_mean_change_inside_the_clip() -> None:
    clips = cut_clips(analysis(10, []), ClipConfig())
    assert clips[0].motion_score == pytest.approx(0.01, abs=0.001)
    assert clips[0].motion_track and clips[0].motion_track[0][0] >= clips[0].start_s
