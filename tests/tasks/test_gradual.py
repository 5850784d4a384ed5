from __future__ import annotations

import numpy as np
import pytest

from tasks import gradual
from tasks.transitions import (
    PICTURE_SHAPE,
    CutEvidence,
    Measurements,
    TransitionConfig,
    gradual_runs,
    marked_runs,
    merge_runs,
    moves_like_the_shot,
    resolve,
    same_layout,
    same_picture,
    within_one_shot,
)


def frames(n: int, seed: int = 0) -> np.ndarray:
    """n frames of a scene drifting to another: every feature has something to measure."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 256, (2, 27, 48, 3)).astype(np.float32)
    w = np.linspace(0, 1, n)[:, None, None, None]
    noise = rng.normal(0, 3, (n, 27, 48, 3))
    return np.clip((1 - w) * a + w * b + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_features_do_not_depend_on_how_frames_are_batched(batch: int) -> None:
    video = frames(150)
    unexplained = np.linspace(0, 0.1, 150, dtype=np.float32)
    whole = gradual.GradualFeatures()
    whole.push(video, unexplained)
    pieces = gradual.GradualFeatures()
    for i in range(0, 150, batch):
        pieces.push(video[i : i + batch], unexplained[i : i + batch])
    np.testing.assert_allclose(pieces.matrix(), whole.matrix(), rtol=1e-6, atol=1e-7)
    assert whole.matrix().shape == (150, gradual.N_FEATURES)


def test_histograms_sum_to_one_per_channel() -> None:
    solid = np.zeros((1, 27, 48, 3), np.uint8)
    solid[..., 0] = 255  # pure red: the top bin of red, the bottom bins of green and blue
    h = gradual.histograms(solid)[0].reshape(3, gradual.HIST_BINS)
    assert h.sum(axis=1) == pytest.approx([1, 1, 1])
    assert (h[0, -1], h[1, 0], h[2, 0]) == (1.0, 1.0, 1.0)


def test_the_running_median_restarts_at_each_shot() -> None:
    # A short still shot between two busy ones (cuts at 30 and 50).
    x = np.concatenate([np.full(30, 5.0), np.zeros(20), np.full(30, 5.0)])[:, None]
    across = gradual.running_median(x, 25)
    within = gradual.running_median(x, 25, starts=[30, 50])
    assert across[40, 0] == 5.0  # its neighbours' level would be its baseline
    assert within[40, 0] == 0.0 and within[25, 0] == within[55, 0] == 5.0


def test_chunked_probabilities_equal_the_whole_video_at_once() -> None:
    rng = np.random.default_rng(2)
    features = gradual.GradualFeatures()
    video = frames(700)
    for i in range(0, 700, 64):
        features.push(
            video[i : i + 64], rng.random(len(video[i : i + 64])).astype(np.float32) * 0.05
        )
    m = features.matrix()
    starts = [250, 420]
    whole = gradual.load_model()(gradual.network_input(m, starts))[1]
    chunked = gradual.gradual_probability(m, starts, chunk=100)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_the_numpy_network_matches_torch() -> None:
    import torch
    import torch.nn.functional as F

    model = gradual.load_model()
    channels = model.layers[0][0].shape[1]
    x = np.random.default_rng(1).normal(size=(channels, 300)).astype(np.float32)
    t = torch.tensor(x[None])
    for i, (w, b, d) in enumerate(model.layers):
        pad = d * (w.shape[2] - 1) // 2
        y = torch.relu(F.conv1d(t, torch.tensor(w), torch.tensor(b), padding=pad, dilation=d))
        t = y if i == 0 else t + y
    expected = torch.sigmoid(F.conv1d(t, *(torch.tensor(a) for a in model.head)))[0].numpy()
    np.testing.assert_allclose(model(x), expected, atol=1e-5)


def test_the_network_marks_a_crossfade_between_still_shots() -> None:
    from tasks.transitions import FrameMeter, TransitionConfig, find_transitions

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 256, (2, 27, 48, 3)).astype(np.float32)
    meter = FrameMeter(25.0, TransitionConfig())
    for i in range(150):  # 2 s of a, a 1 s crossfade (frames 50..74), 3 s of b
        w = min(1.0, max(0.0, (i - 49) / 26))
        meter.push(i / 25, ((1 - w) * a + w * b).astype(np.uint8))
    [t] = find_transitions(meter.finish(), TransitionConfig())
    assert t.kind == "gradual" and abs(t.start_frame - 50) <= 2 and abs(t.end_frame - 74) <= 2


def test_marked_runs_start_high_and_end_low() -> None:
    p = np.array([0.1, 0.35, 0.6, 0.4, 0.32, 0.1, 0.4, 0.45, 0.1, 0.9, 0.2])
    assert marked_runs(p, on=0.5, off=0.3) == [(1, 4), (9, 9)]  # 6..7 never reach 0.5
    assert merge_runs([(1, 4), (7, 9), (20, 22)], gap=2) == [(1, 9), (20, 22)]


def measurements(n: int, fps: float = 25.0) -> Measurements:
    return Measurements(
        fps,
        1,
        [i / fps for i in range(n)],
        [0.01] * n,
        [0.01] * n,
        [(0.0, 0.0)] * n,
        {},
        np.zeros((n, 1)),
        np.zeros((n, sum(gradual.FRAME_SIZE)), np.float16),
        np.zeros((n, *PICTURE_SHAPE), np.uint8),
    )


def test_a_cut_inside_a_marked_run_is_the_steep_part_of_a_gradual_transition() -> None:
    m = measurements(200)
    [t] = resolve([103], [(100, 120, 0.9)], m, TransitionConfig())  # a fade that jumps at 103
    assert (t.kind, t.start_frame, t.end_frame) == ("gradual", 100, 120)


def test_a_cut_at_the_edge_of_a_marked_change_stays_a_cut() -> None:
    """A vignette breathing for 12 s up to a cut is marked to 0.12 s past it: the cut
    towers over the run's changes, so it is a cut and the run before it stays marked."""
    m = measurements(400)
    m.change[300] = 0.3  # everything else changes 0.01 a frame
    found = resolve([300], [(0, 303, 0.8)], m, TransitionConfig())
    assert [(t.kind, t.start_frame, t.end_frame) for t in found] == [
        ("gradual", 0, 299),
        ("cut", 300, 300),
    ]
    [t] = resolve([300], [(297, 302, 0.8)], m, TransitionConfig())  # echoes on both sides
    assert (t.kind, t.start_frame) == ("cut", 300)
    m.change[302] = 0.1  # a transition steep at its start is still one transition
    [t] = resolve([300], [(297, 320, 0.8)], m, TransitionConfig())
    assert (t.kind, t.start_frame, t.end_frame) == ("gradual", 297, 320)


def test_a_new_picture_inside_a_marked_run_stays_a_cut() -> None:
    """A run marked across a cut that nothing of the old picture survives (a new shot in
    the middle of a marked flash): the cut is no step of a fade, whose frames keep much of
    the frame before; a flat side (a fade's white) says nothing either way."""
    m = measurements(200)
    m.evidence[103] = CutEvidence(revert=0.3, coarse=0.95, relit=0.05, spread=1.0)
    found = resolve([103], [(90, 120, 0.9)], m, TransitionConfig())
    assert [(t.kind, t.start_frame, t.end_frame) for t in found] == [
        ("cut", 103, 103),
        ("gradual", 104, 120),  # the longer side stays marked
    ]
    for relit in (0.6, 0.0):  # the old picture in other light; a flat frame
        m.evidence[103] = CutEvidence(revert=0.3, coarse=0.95, relit=relit, spread=1.0)
        [t] = resolve([103], [(90, 120, 0.9)], m, TransitionConfig())
        assert (t.kind, t.start_frame, t.end_frame) == ("gradual", 90, 120)


def test_a_run_with_the_same_layout_on_both_sides_is_a_change_within_the_shot() -> None:
    """The frames either side of a marked run have the same edges, darker or shifted a
    little (a vignette breathing, a light step): within a shot. Another layout: a shot."""
    rng = np.random.default_rng(0)
    m = measurements(100)
    old, new = rng.uniform(40, 200, 75), rng.uniform(40, 200, 75)
    m.profiles[:50] = old
    w = gradual.FRAME_SIZE[0]
    moved = np.concatenate([np.roll(old[:w], 2), np.roll(old[w:], 1)])  # the view drifts
    m.profiles[50:] = 0.8 * moved + 10  # darker
    cfg = TransitionConfig()
    assert same_layout(40, 60, m, cfg)
    m.profiles[50:] = new
    assert not same_layout(40, 60, m, cfg)
    m.profiles[:] = 128.0  # flat: no layout to compare
    assert not same_layout(40, 60, m, cfg)


def test_a_cut_keeps_towering_over_a_long_run_that_holds_a_flash_later() -> None:
    """A cut, then a breathing vignette marked for 7 s up to the next cut, with a strobe 4 s
    in: the cut stands over the frames of the second around it, not over the strobe four
    seconds away or the next cut, so both cuts stay and the run is neither's echo."""
    m = measurements(400)
    m.change[20], m.change[200] = 0.22, 0.2  # the two cuts
    m.change[120:130:3] = [0.36] * 4  # the strobe
    found = resolve([20, 200], [(18, 200, 0.8)], m, TransitionConfig())
    assert [(t.kind, t.start_frame) for t in found] == [("cut", 20), ("cut", 200)]


def test_a_marked_run_at_one_side_of_a_cut_is_its_echo() -> None:
    m = measurements(200)
    found = resolve([100, 150], [(95, 100, 0.7), (150, 156, 0.6)], m, TransitionConfig())
    assert [(t.kind, t.start_frame) for t in found] == [("cut", 100), ("cut", 150)]


def test_runs_shorter_than_the_minimum_are_noise() -> None:
    from tasks.transitions import TransitionConfig

    m = measurements(100)
    probs = np.zeros(100)
    probs[10:13] = 0.9  # 0.12 s
    probs[40:60] = 0.9
    unchecked = TransitionConfig(gradual_run_check=0)  # the run check: tests below
    assert gradual_runs(probs, m, unchecked) == [(40, 59, pytest.approx(0.9))]


def test_runs_the_network_is_unsure_of_are_noise() -> None:
    from tasks.transitions import TransitionConfig

    m = measurements(100)
    probs = np.zeros(100)
    probs[10:30] = [0.9, *[0.5] * 19]  # reaches the start threshold once, then wavers
    probs[60:80] = 0.8
    unchecked = TransitionConfig(gradual_run_check=0)
    assert gradual_runs(probs, m, unchecked) == [(60, 79, pytest.approx(0.8))]


def test_a_run_with_one_colour_picture_on_both_sides_is_a_change_within_the_shot() -> None:
    """A busy picture (whose column and row means are flat, so `same_layout` cannot say)
    either side of a marked run: the same one shifted a cell, tinted and darker is within
    the shot (a hue drift, an exposure step); another picture ends a transition."""
    rng = np.random.default_rng(1)
    m = measurements(100)
    old = rng.uniform(30, 220, PICTURE_SHAPE)
    m.pictures[:50] = old.astype(np.uint8)
    tinted = np.roll(old, 1, axis=1) * np.array([0.7, 0.8, 0.6]) + np.array([20, 0, 35])
    m.pictures[50:] = np.clip(tinted, 0, 255).astype(np.uint8)
    cfg = TransitionConfig()
    assert same_picture(40, 60, m, cfg)
    assert not same_picture(40, 60, m, TransitionConfig(gradual_same_picture=0))  # off
    m.pictures[50:] = rng.uniform(30, 220, PICTURE_SHAPE).astype(np.uint8)
    assert not same_picture(40, 60, m, cfg)
    m.pictures[50:] = 128  # a flat frame says nothing
    assert not same_picture(40, 60, m, cfg)

    m.pictures[:] = old.astype(np.uint8)  # one still picture throughout ...
    assert within_one_shot(40, 60, m, cfg, cuts=[])
    m.pictures[48:52] = 0  # ... through black: a fade out and in between two takes of it
    assert not within_one_shot(40, 60, m, cfg, cuts=[])


def turning_pictures(n: int, turns: np.ndarray, seed: int = 2) -> np.ndarray:
    """n colour pictures, frame k the mix cos(turns[k]) A + sin(turns[k]) B of two random
    pictures: frames j and k correlate about cos(turns[k] - turns[j])."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, (2, *PICTURE_SHAPE))
    t = turns[:, None, None, None]
    return np.clip(128 + 40 * (np.cos(t) * a + np.sin(t) * b), 0, 255).astype(np.uint8)


def test_a_run_that_changes_the_picture_as_the_shot_moves_is_within_the_shot() -> None:
    """A hue drift or a breathing vignette marked over a moving shot: the frames either
    side of the run (82 and 118) match 0.86, better than frames as far apart before and
    after it (0.75), where nothing is marked. The same match over a still shot is a
    transition between look-alike shots: the shot itself keeps its picture over as long;
    so is a run through a flat frame (a fade through white between two takes)."""
    pace = np.where((np.arange(200) > 82) & (np.arange(200) <= 118), 0.015, 0.02)
    moving = turning_pictures(200, np.cumsum(pace))
    m = measurements(200)
    m.pictures[:] = moving
    cfg = TransitionConfig()
    assert moves_like_the_shot(90, 110, m, cfg, cuts=[])
    assert not moves_like_the_shot(90, 110, m, TransitionConfig(gradual_motion_match=0), [])
    # Cuts 20 frames either side: no stretch of the shots as long as the run to compare.
    assert not moves_like_the_shot(90, 110, m, cfg, cuts=[70, 130])
    assert within_one_shot(90, 110, m, cfg, cuts=[])
    m.pictures[98:102] = 250  # a fade out to white and in again: a transition between takes
    assert not within_one_shot(90, 110, m, cfg, cuts=[])

    m.pictures[:] = turning_pictures(200, np.where(np.arange(200) < 100, 0.0, 0.54))
    assert not moves_like_the_shot(90, 110, m, cfg, cuts=[])  # still, a step: 0.86 again

    m.pictures[:] = turning_pictures(200, np.cumsum(np.full(200, 0.03)))  # 0.47 across
    assert not moves_like_the_shot(90, 110, m, cfg, cuts=[])  # far from one picture
