"""Turn shots into clips: transition frames removed, ends trimmed, length bounded."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from storage.types import ClipSpan, ShotAnalysis


@dataclass(frozen=True)
class ClipConfig:
    margin_s: float = 0.5  # trimmed at each end of a shot, away from the transition
    min_clip_s: float = 2.0
    max_clip_s: float = 60.0


def frame_step(times: list[float]) -> float:
    """The mean frame duration: where the last frame ends."""
    return (times[-1] - times[0]) / max(1, len(times) - 1)


def shot_ranges(analysis: ShotAnalysis) -> list[tuple[int, int]]:
    """Inclusive frame ranges between transitions; transition frames belong to no shot."""
    n = len(analysis.times)
    ranges, start = [], 0
    for t in analysis.transitions:
        if t.start_frame - 1 >= start:
            ranges.append((start, t.start_frame - 1))
        start = t.end_frame if t.kind == "cut" else t.end_frame + 1
    if start <= n - 1:
        ranges.append((start, n - 1))
    return ranges


def cut_clips(analysis: ShotAnalysis, cfg: ClipConfig) -> list[ClipSpan]:
    """Clips from shots, in seconds of presentation time (so variable frame rate is right)."""
    times = analysis.times
    motion = np.asarray(analysis.motion)
    t_arr = np.asarray(times)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    clips: list[ClipSpan] = []
    for first, last in shot_ranges(analysis):
        start = times[first] + cfg.margin_s
        end = times[last] + step - cfg.margin_s
        length = end - start
        if length < cfg.min_clip_s:
            continue
        pieces = max(1, math.ceil(length / cfg.max_clip_s))
        size = length / pieces
        for p in range(pieces):
            a, b = start + p * size, start + (p + 1) * size
            mask = (t_arr >= a) & (t_arr < b)
            score = float(motion[mask].mean()) if mask.any() else 0.0
            track = tuple(
                (times[k], analysis.velocity[k][0], analysis.velocity[k][1])
                for k in np.flatnonzero(mask)
            )
            clips.append(ClipSpan(len(clips), round(a, 3), round(b, 3), round(score, 5), track))
    return clips
