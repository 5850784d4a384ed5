"""Pick a clip's keyframes: one candidate every `interval_s`, near-duplicates dropped.

Decoding is streamed (ffmpeg's select filter keeps only the candidates), and each
keyframe keeps its true presentation time, never index x interval: ShareGPT4Video's
reference code assumed the latter, which is wrong once frames are dropped (its issue #34).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.types import ClipSpan, Keyframe, ProbeInfo, Rejection, RejectReason
from tasks import media
from tasks.wrap import stage_task

STAGE = "keyframes"


@dataclass(frozen=True)
class KeyframeConfig:
    interval_s: float = 2.0
    max_side: int = 384  # long side of stored frames, in pixels
    min_change: float = 0.01  # a candidate this close to the last kept keyframe is dropped
    timeout_s: float = 300.0


def frame_size(probe: ProbeInfo, max_side: int) -> tuple[int, int]:
    """Display size (rotation applied, as ffmpeg autorotates) scaled to max_side, even."""
    w, h = (
        (probe.height, probe.width) if probe.rotation in (90, 270) else (probe.width, probe.height)
    )
    scale = min(1.0, max_side / max(w, h))
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def thumbnail_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of 32-pixel-wide thumbnails, 0..1."""

    def thumb(img: np.ndarray) -> np.ndarray:
        step = max(1, img.shape[1] // 32)
        return img[::step, ::step].astype(np.float32)

    return float(np.abs(thumb(a) - thumb(b)).mean() / 255.0)


def extract_keyframes(
    path: Path, probe: ProbeInfo, clip: ClipSpan, cfg: KeyframeConfig
) -> list[Keyframe] | Rejection:
    width, height = frame_size(probe, cfg.max_side)
    select = f"isnan(prev_selected_t)+gte(t-prev_selected_t\\,{cfg.interval_s})"
    kept: list[Keyframe] = []
    try:
        for f in media.stream_frames(
            path,
            width,
            height,
            timeout_s=cfg.timeout_s,
            start_s=clip.start_s,
            duration_s=clip.duration_s,
            select=select,
        ):
            if not kept or thumbnail_distance(kept[-1].image, f.rgb) >= cfg.min_change:
                kept.append(Keyframe(t=round(f.t, 3), image=f.rgb.copy()))
    except (media.MediaError, media.MediaTimeout) as e:
        if not kept:
            return Rejection(STAGE, RejectReason.DECODE_FAILED, str(e), (clip.start_s, clip.end_s))
    if not kept:
        return Rejection(
            STAGE, RejectReason.DECODE_FAILED, "no frame decoded", (clip.start_s, clip.end_s)
        )
    return kept


@stage_task("keyframes")
def keyframes_task(
    path: Path, probe: ProbeInfo, clip: ClipSpan, cfg: KeyframeConfig
) -> list[Keyframe] | Rejection:
    return extract_keyframes(path, probe, clip, cfg)
