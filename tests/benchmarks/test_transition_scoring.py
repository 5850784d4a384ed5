"""The transition benchmark's scoring: what its figures and intervals claim."""

from __future__ import annotations

from benchmarks.synthetic import Truth
from benchmarks.transitions import f1_intervals, score


def _videos(hits: int, misses: int) -> tuple[list[list[Truth]], list[list[tuple[str, int, int]]]]:
    """Videos of one cut each at frame 50: `hits` found where it is, `misses` found 30
    frames off (a miss and a false cut)."""
    truths = [[Truth("cut", 50, 50)] for _ in range(hits + misses)]
    preds = [[("cut", 50, 50)] for _ in range(hits)] + [[("cut", 80, 80)] for _ in range(misses)]
    return truths, preds


def test_a_set_every_video_of_which_is_right_has_no_spread() -> None:
    truths, preds = _videos(20, 0)
    assert score(truths, preds)["cut_f1"] == 1.0
    assert f1_intervals(truths, preds, rounds=200)["cut"] == (1.0, 1.0)


def test_the_interval_holds_the_sets_figure_and_narrows_with_more_videos() -> None:
    truths, preds = _videos(17, 3)  # F1 0.85 on 20 videos
    f1 = score(truths, preds)["cut_f1"]
    low, high = f1_intervals(truths, preds, rounds=500)["cut"]
    assert low < f1 < high
    assert high - low > 0.1  # 20 videos say little
    many_truths, many_preds = truths * 10, preds * 10  # the same mix, 200 videos
    low_many, high_many = f1_intervals(many_truths, many_preds, rounds=500)["cut"]
    assert low_many < f1 < high_many
    assert high_many - low_many < (high - low) / 2
