from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from storage.types import ProbeInfo
from tasks import gradual, run_check
from tasks.probe import ProbeConfig, probe_video
from tasks.transitions import (
    PICTURE_SHAPE,
    Measurements,
    TransitionConfig,
    find_transitions,
    gradual_runs,
    measure_video,
)


def test_the_check_learns_which_runs_are_transitions_and_survives_a_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(400, run_check.N_RUN_FEATURES))
    labels = (rows[:, 0] + 0.5 * rows[:, 5] > 0).astype(np.float64)  # two features decide
    check = run_check.fit(rows, labels)
    check.save(tmp_path / "check.npz")
    loaded = run_check.RunCheck.load(tmp_path / "check.npz")
    fresh = rng.normal(size=(200, run_check.N_RUN_FEATURES))
    truth = fresh[:, 0] + 0.5 * fresh[:, 5] > 0
    assert ((loaded.probability(fresh) >= 0.5) == truth).mean() > 0.9
    assert np.allclose(loaded.probability(fresh), check.probability(fresh))


def test_the_shipped_check_drops_runs_the_network_marks_inside_shots(tmp_path: Path) -> None:
    """A video of the training generator at a seed the check never trained on (829: three
    shots joined by two cuts, with in-shot events): the network marks three runs inside
    the first shot (mean scores 0.62, 0.71 and 0.65), and the check leaves only the two
    cuts. Without the check, the tests of the frames either side of a run drop two."""
    from benchmarks.synthetic import training_video

    video = tmp_path / "v.mp4"
    truth = training_video(video, random.Random(829))
    assert [(t.kind, t.start) for t in truth] == [("cut", 177), ("cut", 306)]
    probe = probe_video(video, ProbeConfig())
    assert isinstance(probe, ProbeInfo)
    m = measure_video(video, probe, TransitionConfig())
    assert isinstance(m, Measurements)

    def found(cfg: TransitionConfig) -> list[tuple[str, int]]:
        return [(t.kind, t.start_frame) for t in find_transitions(m, cfg)]

    no_sides = {"gradual_same_picture": 0, "gradual_motion_match": 0}  # the tests of a run's sides
    unchecked = found(TransitionConfig(gradual_run_check=0, **no_sides))
    assert [k for k, _ in unchecked].count("gradual") == 3
    assert all(start < 177 for kind, start in unchecked if kind == "gradual")  # in shot one
    assert [k for k, _ in found(TransitionConfig(**no_sides))] == ["cut", "cut"]
    # The same picture either side drops two of the three on its own, a match as good as
    # the shot's own motion one of those two; with the check, all three go.
    no_check = TransitionConfig(gradual_run_check=0, gradual_same_picture=0)
    assert [k for k, _ in found(no_check)].count("gradual") == 2
    assert [k for k, _ in found(TransitionConfig(gradual_run_check=0))].count("gradual") == 1
    assert [k for k, _ in found(TransitionConfig())] == ["cut", "cut"]


def test_marked_runs_the_check_rejects_are_dropped() -> None:
    """A check that believes only long runs: the short marked run goes, the long stays."""
    n, fps = 300, 30.0
    m = Measurements(
        fps,
        1,
        [i / fps for i in range(n)],
        [0.01] * n,
        [0.01] * n,
        [(0.0, 0.0)] * n,
        {},
        np.full((n, gradual.N_FEATURES), 0.05),
        np.zeros((n, sum(gradual.FRAME_SIZE)), np.float16),
        np.zeros((n, *PICTURE_SHAPE), np.uint8),
    )
    probs = np.zeros(n)
    probs[20:30] = 0.9  # 0.33 s
    probs[100:160] = 0.9  # 2 s
    weights = np.zeros(run_check.N_RUN_FEATURES)
    weights[0] = 10.0  # the log of the run's length in seconds
    zeros, ones = np.zeros_like(weights), np.ones_like(weights)
    only_long = run_check.RunCheck(zeros, ones, weights, bias=0.0)  # 0.5 at one second
    runs = gradual_runs(probs, m, TransitionConfig(), check=only_long)
    assert [(a, b) for a, b, _ in runs] == [(100, 159)]
    unchecked = gradual_runs(probs, m, TransitionConfig(gradual_run_check=0), check=only_long)
    assert [(a, b) for a, b, _ in unchecked] == [(20, 29), (100, 159)]
