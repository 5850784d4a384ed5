"""Score how good a clip looks, and keep the ones above a threshold.

Backends sit behind `AestheticScorer` and are chosen by `aesthetic.scorer`:
- `heuristic` (offline default): model-free technical quality on 0-10 from sharpness,
  exposure, contrast, colourfulness and noise. It is not an aesthetic model, and every
  row says which scorer produced its score.
- `laion`: LAION's improved aesthetic predictor: CLIP ViT-L/14 image embeddings,
  L2-normalised, into its MLP (weights from `aesthetic.mlp_path`), on the LAION 1-10 scale.
A clip's score aggregates its keyframes' (`min` or `mean`). Clips under the threshold are
recorded in quarantine with their score (`low_aesthetic`) and go no further.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from storage.records import ClipRecord
from storage.types import Keyframe, Rejection, RejectReason
from tasks.features import ClipFeaturizer, load_featurizer

STAGE = "aesthetic"


class AestheticScorer(Protocol):
    name: str

    def score(self, keyframes: list[Keyframe]) -> list[float]:
        """One score per keyframe."""
        ...


def _grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0


def _box3(g: np.ndarray) -> np.ndarray:
    p = np.pad(g, 1, mode="edge")
    return sum(p[i : i + g.shape[0], j : j + g.shape[1]] for i in range(3) for j in range(3)) / 9


def noise_level(g: np.ndarray) -> float:
    """Std of the fine residual (image minus its 3x3 mean) in the flattest half of the
    picture, where real detail is scarce and what remains is mostly noise."""
    residual = g - _box3(g)
    local = np.abs(_box3(g) - _box3(_box3(g)))
    flat = local <= np.median(local)
    return float(residual[flat].std()) if flat.any() else 0.0


def technical_quality(img: np.ndarray) -> float:
    """0..10 from sharpness, exposure, contrast, colourfulness, less a noise penalty."""
    g = _grey(img)
    lap = g[1:-1, 2:] + g[1:-1, :-2] + g[2:, 1:-1] + g[:-2, 1:-1] - 4 * g[1:-1, 1:-1]
    noise = noise_level(g)
    # White noise of variance s2 adds 20*s2 to the Laplacian's variance, and the residual
    # above sees 8/9 of s2: subtract that, so only detail above the noise counts.
    detail = max(float(lap.var()) - 22.5 * noise**2, 0.0)
    sharpness = float(np.clip(np.log10(1 + 1e4 * detail) / 2.5, 0, 1))
    exposure = float(np.clip(1 - abs(g.mean() - 0.45) / 0.45, 0, 1))
    # Contrast and colour are measured on a lightly smoothed picture, so noise does not
    # pass for either.
    contrast = float(np.clip(_box3(g).std() / 0.2, 0, 1))
    rgb = np.stack([_box3(c) for c in np.moveaxis(img.astype(np.float32), -1, 0)], axis=-1)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    colour = float(np.clip(colourful / 80.0, 0, 1))
    cleanliness = float(np.clip(1 - noise / 0.04, 0, 1))
    # Good exposure and low noise earn credit only where there is a picture to speak of:
    # a flat grey frame is well exposed and noiseless, and still not worth keeping.
    substance = min(1.0, 2 * contrast)
    score = (
        0.25 * sharpness
        + 0.2 * contrast
        + 0.2 * colour
        + (0.2 * exposure + 0.15 * cleanliness) * substance
    )
    return round(10 * score, 3)


class HeuristicScorer:
    name = "heuristic"

    def score(self, keyframes: list[Keyframe]) -> list[float]:
        return [technical_quality(k.image) for k in keyframes]


def aesthetic_mlp(input_size: int = 768) -> Any:
    """LAION's improved-aesthetic-predictor head. Its state-dict keys (layers.0/2/4/6/7)
    match the released weights, so `sac+logos+ava1-l14-linearMSE.pth` loads as is."""
    from collections import OrderedDict

    from torch import nn

    layers = nn.Sequential(
        nn.Linear(input_size, 1024),
        nn.Dropout(0.2),
        nn.Linear(1024, 128),
        nn.Dropout(0.2),
        nn.Linear(128, 64),
        nn.Dropout(0.1),
        nn.Linear(64, 16),
        nn.Linear(16, 1),
    )
    return nn.Sequential(OrderedDict(layers=layers))


class LaionScorer:
    """CLIP image embeddings (L2-normalised) into LAION's aesthetic MLP."""

    def __init__(self, clip_model: str, mlp_path: str) -> None:
        import torch

        featurizer = load_featurizer(clip_model, "aesthetic.clip_model")
        assert isinstance(featurizer, ClipFeaturizer)
        self.featurizer = featurizer
        self.name = f"laion:{Path(mlp_path).name}"
        if not Path(mlp_path).is_file():
            raise FileNotFoundError(
                f"aesthetic MLP weights not found at {mlp_path!r}; set aesthetic.mlp_path"
            )
        state = torch.load(mlp_path, map_location="cpu", weights_only=True)
        self.mlp = aesthetic_mlp(int(state["layers.0.weight"].shape[1]))
        self.mlp.load_state_dict(state)
        self.mlp.to(featurizer.device).eval()
        self._lock = threading.Lock()

    def score(self, keyframes: list[Keyframe]) -> list[float]:
        import torch

        # Reuse the embeddings keyframe selection computed with the same CLIP model.
        if keyframes and all(k.feature_name == self.featurizer.name for k in keyframes):
            feats = np.stack([k.feature for k in keyframes])
        else:
            feats = self.featurizer.embed([k.image for k in keyframes])
        with self._lock, torch.no_grad():
            x = torch.from_numpy(feats).to(self.featurizer.device)
            scores = self.mlp(x).squeeze(-1).cpu().numpy()
        return [round(float(s), 4) for s in scores]


@dataclass(frozen=True)
class AestheticConfig:
    scorer: str = "heuristic"  # or "laion"
    threshold: float = 3.0  # Open-Sora uses 4.5-5 on the LAION scale
    aggregate: str = "mean"  # or "min"
    clip_model: str | None = None  # laion: CLIP ViT-L/14 id or path
    mlp_path: str | None = None  # laion: the MLP's .pth

    def build(self) -> AestheticStage:
        return AestheticStage(self)


_LOCK = threading.Lock()


def make_scorer(cfg: AestheticConfig) -> AestheticScorer:
    """The scorer for a config, loaded once per process."""
    with _LOCK:
        return _make_scorer(cfg.scorer, cfg.clip_model, cfg.mlp_path)


@lru_cache(maxsize=4)
def _make_scorer(scorer: str, clip_model: str | None, mlp_path: str | None) -> AestheticScorer:
    if scorer == "heuristic":
        return HeuristicScorer()
    if scorer == "laion":
        if not clip_model or not mlp_path:
            raise ValueError("the laion scorer needs aesthetic.clip_model and aesthetic.mlp_path")
        return LaionScorer(clip_model, mlp_path)
    raise ValueError(
        f"unknown aesthetic scorer {scorer!r}: set aesthetic.scorer to heuristic or laion"
    )


def aggregate(scores: list[float], how: str) -> float:
    return float(min(scores) if how == "min" else np.mean(scores))


class AestheticStage:
    """The clip's score aggregates its keyframes'; below the threshold it is set aside
    (`low_aesthetic`, with its score). Fills `aesthetic_score` and `aesthetic_scorer`."""

    name = STAGE
    columns = ()  # aesthetic_score and aesthetic_scorer are core clip columns
    needs = ("keyframes",)
    provides = ("aesthetic_score",)

    def __init__(self, config: AestheticConfig) -> None:
        self.config = config
        self.scorer = make_scorer(config)

    def __call__(self, clip: ClipRecord) -> ClipRecord | Rejection:
        span = (clip.span.start_s, clip.span.end_s)
        if not clip.keyframes:
            return Rejection(STAGE, RejectReason.DECODE_FAILED, "no keyframes to score", span)
        per_keyframe = self.scorer.score(clip.keyframes)
        value = aggregate(per_keyframe, self.config.aggregate)
        clip.scores["aesthetic_score"] = round(value, 3)
        clip.scores["aesthetic_scorer"] = self.scorer.name
        clip.notes["aesthetic"] = per_keyframe
        if value < self.config.threshold:
            return Rejection(
                STAGE,
                RejectReason.LOW_AESTHETIC,
                f"{self.scorer.name} score {value:.2f} < threshold {self.config.threshold}",
                span,
                round(value, 3),
            )
        return clip
