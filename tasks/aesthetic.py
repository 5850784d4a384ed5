"""Score how good a clip looks, and keep the ones above a threshold.

Backends sit behind `AestheticScorer`. The offline default, `heuristic`, is model-free:
a technical-quality score on 0-10 from sharpness, exposure, contrast and colourfulness.
It is not LAION's aesthetic predictor and every row says which scorer produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from storage.types import ClipSpan, Keyframe, Rejection, RejectReason, ScoredClip
from tasks.wrap import stage_task

STAGE = "aesthetic"


class AestheticScorer(Protocol):
    name: str

    def score(self, images: list[np.ndarray]) -> list[float]:
        """One score on 0..10 per RGB image."""
        ...


def _grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0


def technical_quality(img: np.ndarray) -> float:
    """0..10 from sharpness (Laplacian energy), exposure, contrast and colourfulness."""
    g = _grey(img)
    lap = g[1:-1, 2:] + g[1:-1, :-2] + g[2:, 1:-1] + g[:-2, 1:-1] - 4 * g[1:-1, 1:-1]
    sharpness = float(np.clip(np.log10(1 + 1e4 * lap.var()) / 2.5, 0, 1))
    exposure = float(np.clip(1 - abs(g.mean() - 0.45) / 0.45, 0, 1))
    contrast = float(np.clip(g.std() / 0.2, 0, 1))
    rgb = img.astype(np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    colour = float(np.clip(colourful / 80.0, 0, 1))
    return round(10 * (0.3 * sharpness + 0.2 * exposure + 0.25 * contrast + 0.25 * colour), 3)


class HeuristicScorer:
    name = "heuristic"

    def score(self, images: list[np.ndarray]) -> list[float]:
        return [technical_quality(img) for img in images]


@dataclass(frozen=True)
class AestheticConfig:
    scorer: str = "heuristic"
    threshold: float = 3.0
    aggregate: str = "mean"  # or "min"


def make_scorer(cfg: AestheticConfig) -> AestheticScorer:
    if cfg.scorer == "heuristic":
        return HeuristicScorer()
    raise ValueError(f"unknown aesthetic scorer {cfg.scorer!r} (setting aesthetic.scorer)")


def score_clip(
    clip: ClipSpan, keyframes: list[Keyframe], scorer: AestheticScorer, cfg: AestheticConfig
) -> ScoredClip | Rejection:
    """The clip's score aggregates its keyframes'; below the threshold it is set aside."""
    scores = scorer.score([k.image for k in keyframes])
    value = float(min(scores) if cfg.aggregate == "min" else np.mean(scores))
    if value < cfg.threshold:
        return Rejection(
            STAGE,
            RejectReason.LOW_AESTHETIC,
            f"{scorer.name} score {value:.2f} < threshold {cfg.threshold}",
            (clip.start_s, clip.end_s),
            round(value, 3),
        )
    return ScoredClip(clip, keyframes, round(value, 3), scorer.name)


@stage_task("aesthetic")
def aesthetic_task(
    clip: ClipSpan, keyframes: list[Keyframe], cfg: AestheticConfig
) -> ScoredClip | Rejection:
    return score_clip(clip, keyframes, make_scorer(cfg), cfg)
