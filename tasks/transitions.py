"""Find shot boundaries in one streamed, low-resolution decode pass.

Signal: the mean absolute difference between consecutive tiny frames (area-downscaled,
so noise and fine motion average out). A hard cut is one frame whose change towers over
its neighbourhood and persists (a flash, which returns to the old picture, does not).
A gradual transition (dissolve, fade) is found by twin comparison (Zhang et al., 1993):
a run of frames each changing a little more than their neighbourhood, whose accumulated
change from the run's start to its end is as large as a cut's, and whose middle frame is a
mix of its ends (which motion is not).
The same pass yields per-frame motion, which becomes each clip's motion score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.types import ProbeInfo, Rejection, RejectReason, Transition
from tasks import media
from tasks.wrap import stage_task

STAGE = "transitions"


@dataclass(frozen=True)
class TransitionConfig:
    width: int = 48
    height: int = 27
    cut_threshold: float = 0.08  # mean |diff| of a cut, on 0..1
    cut_ratio: float = 4.0  # cut change vs. the neighbourhood's median change
    window_s: float = 1.0  # neighbourhood half-width
    flash_frames: int = 3  # a change that reverts within this many frames is a flash
    gradual_frame_ratio: float = 3.0  # per-frame change in a gradual run vs. neighbourhood
    gradual_frame_min: float = 0.003
    gradual_min_frames: int = 4
    blend_tolerance: float = 0.3  # middle frame vs. mix of the ends, relative to the change
    timeout_s: float = 600.0


@dataclass(frozen=True)
class ShotAnalysis:
    """What the decode pass measured: frame times, per-frame change and the transitions."""

    times: list[float]
    motion: list[float]
    velocity: list[tuple[float, float]]  # image motion, frame widths/heights per second
    transitions: list[Transition]


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean() / 255.0)


def global_velocity(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Whole-image translation between two grey frames in pixels per frame (Lucas-Kanade).

    One 2x2 solve over all pixels: for a few moving things on a still background this is
    their motion; for a pan it is the pan. Cheap enough to run on every analysed frame.
    """
    mean = 0.5 * (prev + cur)
    gy, gx = np.gradient(mean)
    gt = cur - prev
    a = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    b = -np.array([np.sum(gx * gt), np.sum(gy * gt)])
    if np.linalg.det(a) < 1e-6 * max(1.0, float(np.trace(a)) ** 2):
        return 0.0, 0.0
    u, v = np.linalg.solve(a, b)
    return float(u), float(v)


def _is_flash(frames: np.ndarray, i: int, span: int, same: float) -> bool:
    """True when the picture just before the jump at i comes back within `span` frames
    (a flash starting at i) or was there up to `span` frames before (a flash ending at i)."""
    n = len(frames)
    before = range(max(0, i - 1 - span), i)
    after = range(i, min(n, i + span + 1))
    return any(_distance(frames[b], frames[a]) < same for b in before for a in after if (a - b) > 1)


def _is_blend(frames: np.ndarray, first: int, last: int, tolerance: float) -> bool:
    """A dissolve or fade mixes its end pictures: the middle frame is close to their mean.
    Motion is not a blend, so a run of fast action does not pass for a transition."""
    mid = (first + last) // 2
    w = (mid - first) / max(1, last - first)
    mix = (1 - w) * frames[first] + w * frames[last]
    return _distance(frames[mid], mix) <= tolerance


def find_transitions(
    frames: np.ndarray, times: list[float], fps: float, cfg: TransitionConfig
) -> tuple[list[Transition], np.ndarray]:
    """Transitions in a stack of tiny frames (N x H x W x 3 float32); also per-frame change."""
    n = len(frames)
    diff = np.zeros(n, dtype=np.float64)
    if n > 1:
        diff[1:] = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3)) / 255.0
    w = max(2, round(cfg.window_s * (fps or 25.0)))

    def neighbourhood(i: int, lo: int, hi: int) -> float:
        around = np.concatenate([diff[max(1, lo - w) : lo], diff[hi + 1 : hi + 1 + w]])
        return float(np.median(around)) if around.size else 0.0

    transitions: list[Transition] = []
    is_cut = np.zeros(n, dtype=bool)
    for i in range(1, n):
        base = neighbourhood(i, i, i)
        if diff[i] < cfg.cut_threshold or diff[i] < cfg.cut_ratio * base:
            continue
        if _is_flash(frames, i, cfg.flash_frames, 0.5 * diff[i]):
            continue
        is_cut[i] = True
        transitions.append(Transition("cut", i, i, times[i], times[i], round(float(diff[i]), 4)))

    i = 1
    while i < n:
        if is_cut[i]:
            i += 1
            continue
        low = max(cfg.gradual_frame_min, cfg.gradual_frame_ratio * neighbourhood(i, i, i))
        if diff[i] < low:
            i += 1
            continue
        j = i
        while j + 1 < n and not is_cut[j + 1] and diff[j + 1] >= low:
            j += 1
        total = _distance(frames[i - 1], frames[j])
        if (
            j - i + 1 >= cfg.gradual_min_frames
            and total >= cfg.cut_threshold
            and _is_blend(frames, i - 1, j, cfg.blend_tolerance * total)
        ):
            transitions.append(Transition("gradual", i, j, times[i], times[j], round(total, 4)))
        i = j + 1
    transitions.sort(key=lambda t: t.start_frame)
    return transitions, diff


def analyse_shots(path: Path, probe: ProbeInfo, cfg: TransitionConfig) -> ShotAnalysis | Rejection:
    """Decode once at tiny size and find the transitions; bad media is a Rejection."""
    frames: list[np.ndarray] = []
    times: list[float] = []
    velocity: list[tuple[float, float]] = []
    fps = probe.fps or 25.0
    try:
        for f in media.stream_frames(path, cfg.width, cfg.height, timeout_s=cfg.timeout_s):
            frame = f.rgb.astype(np.float32)
            if frames:
                dt = max(f.t - times[-1], 1.0 / fps)
                u, v = global_velocity(frames[-1].mean(axis=2), frame.mean(axis=2))
                velocity.append((u / cfg.width / dt, v / cfg.height / dt))
            else:
                velocity.append((0.0, 0.0))
            frames.append(frame)
            times.append(f.t)
    except media.MediaTimeout as e:
        return Rejection(STAGE, RejectReason.PROBE_TIMEOUT, str(e))
    except media.MediaError as e:
        if not frames:
            return Rejection(STAGE, RejectReason.DECODE_FAILED, f"{e}: {e.detail[-300:]}")
        # A damaged tail: keep what decoded cleanly, as players do.
    if len(frames) < 2:
        return Rejection(STAGE, RejectReason.DECODE_FAILED, f"{len(frames)} decodable frame(s)")
    transitions, diff = find_transitions(np.stack(frames), times, fps, cfg)
    return ShotAnalysis(times, diff.tolist(), velocity, transitions)


@stage_task("transitions")
def transitions_task(
    path: Path, probe: ProbeInfo, cfg: TransitionConfig
) -> ShotAnalysis | Rejection:
    return analyse_shots(path, probe, cfg)
