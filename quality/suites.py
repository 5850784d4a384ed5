"""Expectation suites, as code. Each expectation's name says what a failing row broke."""

from __future__ import annotations

from dataclasses import dataclass

import great_expectations.expectations as gxe


@dataclass(frozen=True)
class QualityConfig:
    min_caption_chars: int = 20
    max_caption_chars: int = 20000
    min_clip_s: float = 0.5
    max_clip_s: float = 600.0
    norm_tolerance: float = 1e-3
    max_failed_fraction: float = 0.5  # a batch failing more than this fails the run


# Batch-level expectations: when one fails, nothing of the batch lands.
BATCH_LEVEL = {"clip_id_unique"}


def clip_expectations(cfg: QualityConfig, embedding_dim: int) -> list[gxe.Expectation]:
    """Expectations over the gate's frame (clip rows plus derived columns), named in meta."""
    named = {
        "clip_id_present": gxe.ExpectColumnValuesToNotBeNull(column="clip_id"),
        "clip_id_unique": gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        "caption_present": gxe.ExpectColumnValuesToNotBeNull(column="caption"),
        "caption_length": gxe.ExpectColumnValueLengthsToBeBetween(
            column="caption", min_value=cfg.min_caption_chars, max_value=cfg.max_caption_chars
        ),
        "duration_in_bounds": gxe.ExpectColumnValuesToBeBetween(
            column="duration_s", min_value=cfg.min_clip_s, max_value=cfg.max_clip_s
        ),
        "aesthetic_in_range": gxe.ExpectColumnValuesToBeBetween(
            column="aesthetic_score", min_value=0, max_value=10
        ),
        "embedding_dimension": gxe.ExpectColumnValuesToBeBetween(
            column="embedding_dim", min_value=embedding_dim, max_value=embedding_dim
        ),
        "embedding_unit_norm": gxe.ExpectColumnValuesToBeBetween(
            column="embedding_norm",
            min_value=1 - cfg.norm_tolerance,
            max_value=1 + cfg.norm_tolerance,
        ),
    }
    for name, expectation in named.items():
        expectation.meta = {"name": name}
    return list(named.values())
