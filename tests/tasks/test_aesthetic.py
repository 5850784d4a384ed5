from __future__ import annotations

import numpy as np
import pytest

from storage.records import ClipRecord
from storage.types import ClipSpan, Keyframe, Rejection, RejectReason
from tasks.aesthetic import AestheticConfig, AestheticStage, HeuristicScorer, technical_quality


def score_clip(span: ClipSpan, keyframes: list[Keyframe], cfg: AestheticConfig) -> object:
    """The aesthetic stage on a clip with these keyframes: the record or its Rejection."""
    return AestheticStage(cfg)(ClipRecord(span, keyframes=keyframes))


def natural_image(seed: int = 0) -> np.ndarray:
    """A colourful, textured picture: smooth colour fields plus edges."""
    rng = np.random.default_rng(seed)
    h, w = 180, 320
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack(
        [128 + 100 * np.sin(x / 23), 128 + 90 * np.cos(y / 17), 128 + 80 * np.sin((x + y) / 31)],
        axis=-1,
    )
    for _ in range(12):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(8, 30)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img.clip(0, 255).astype(np.uint8)


def box_blur(img: np.ndarray, k: int = 9) -> np.ndarray:
    out = img.astype(np.float32)
    for axis in (0, 1):
        out = sum(np.roll(out, s, axis=axis) for s in range(-(k // 2), k // 2 + 1)) / k
    return out.astype(np.uint8)


def add_noise(img: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(1).normal(0, sigma, img.shape)
    return (img + noise).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "degrade",
    [
        pytest.param(lambda im: box_blur(im), id="blurred"),
        pytest.param(lambda im: (im * 0.25).astype(np.uint8), id="darkened"),
        pytest.param(
            lambda im: (128 + (im.astype(np.float32) - 128) * 0.3).astype(np.uint8), id="washed-out"
        ),
        pytest.param(lambda im: add_noise(im, 25), id="noisy"),
    ],
)
def test_degradations_score_below_the_original(degrade) -> None:
    original = natural_image()
    assert technical_quality(degrade(original)) < technical_quality(original) - 0.5


def test_scores_are_on_a_0_to_10_scale() -> None:
    flat = np.full((90, 160, 3), 127, dtype=np.uint8)
    assert 0 <= technical_quality(flat) < 3 < technical_quality(natural_image()) <= 10


def test_low_scoring_clips_are_set_aside_with_score_and_reason() -> None:
    clip = ClipSpan(0, 1.0, 4.0)
    flat = [Keyframe(1.0, np.full((90, 160, 3), 127, dtype=np.uint8))]
    result = score_clip(clip, flat, AestheticConfig(threshold=3.0))
    assert isinstance(result, Rejection)
    assert result.reason == RejectReason.LOW_AESTHETIC and result.span == (1.0, 4.0)
    assert result.score is not None and result.score < 3.0


def test_min_and_mean_aggregation() -> None:
    clip = ClipSpan(0, 0.0, 4.0)
    kfs = [Keyframe(0.0, natural_image()), Keyframe(2.0, box_blur(natural_image()))]
    scores = HeuristicScorer().score(kfs)
    mean = score_clip(clip, kfs, AestheticConfig(threshold=0, aggregate="mean"))
    low = score_clip(clip, kfs, AestheticConfig(threshold=0, aggregate="min"))
    assert isinstance(mean, ClipRecord) and isinstance(low, ClipRecord)
    assert mean.scores["aesthetic_score"] == pytest.approx(np.mean(scores), abs=1e-3)
    assert low.scores["aesthetic_score"] == pytest.approx(min(scores), abs=1e-3)
    assert mean.notes["aesthetic"] == scores  # what `capflow score` shows per keyframe


def test_laion_path_end_to_end_with_a_tiny_clip(tmp_path) -> None:
    from tasks.aesthetic import make_scorer
    from tasks.features import load_featurizer
    from tests.models_clip import build_random_aesthetic_mlp, build_tiny_clip

    clip_dir = build_tiny_clip(tmp_path / "clip")
    mlp = build_random_aesthetic_mlp(tmp_path / "mlp.pth", input_size=32)
    cfg = AestheticConfig(
        scorer="laion", clip_model=str(clip_dir), mlp_path=str(mlp), threshold=-100
    )
    scorer = make_scorer(cfg)
    assert scorer is make_scorer(cfg)  # loaded once per process
    featurizer = load_featurizer(str(clip_dir))
    images = [natural_image(0), box_blur(natural_image(0))]
    with_features = [
        Keyframe(float(i), img, f, featurizer.name)
        for i, (img, f) in enumerate(zip(images, featurizer.embed(images), strict=True))
    ]
    without = [Keyframe(float(i), img) for i, img in enumerate(images)]
    assert scorer.score(with_features) == pytest.approx(scorer.score(without), abs=1e-4)
    result = score_clip(ClipSpan(0, 0.0, 2.0), with_features, cfg)
    assert isinstance(result, ClipRecord)
    assert result.scores["aesthetic_scorer"] == "laion:mlp.pth"


def test_laion_without_weights_names_the_setting() -> None:
    from tasks.aesthetic import make_scorer

    with pytest.raises(ValueError, match=r"aesthetic\.mlp_path"):
        make_scorer(AestheticConfig(scorer="laion", clip_model="x"))
