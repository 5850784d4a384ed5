"""Expectation suites, as code. Each check's name says what a failing row broke.

Two suites: `sources` (one row per probed and decoded object) and `clips` (one row per
captioned clip, with its embedding). Row-level checks quarantine the rows that fail;
batch-level checks (unique ids) stop the whole batch from landing.
"""

from __future__ import annotations

from dataclasses import dataclass

import great_expectations.expectations as gxe

from quality.config import QualityConfig

# Assistant boilerplate and refusals: a caption like this describes the model, not the video.
BOILERPLATE = [
    r"(?i)\bas an ai\b",
    r"(?i)\bi'?m sorry\b",
    r"(?i)\bi (?:can(?:no|')t|am unable to|am not able to)\b",
    r"(?i)\blanguage model\b",
    r"(?i)\bi hope this helps\b",
    r"(?i)^(?:sure|certainly|of course)[,!.]",
]
STOCK_OPENER = (
    r"(?i)^\s*(?:in\s+)?(?:this|the)\s+(?:video|clip|footage)\s+(?:shows|depicts|features)"
)


@dataclass(frozen=True)
class Check:
    name: str
    expectation: gxe.Expectation
    batch_level: bool = False


def _checks(pairs: dict[str, gxe.Expectation], batch_level: set[str]) -> list[Check]:
    out = []
    for name, expectation in pairs.items():
        expectation.meta = {"name": name}
        column = getattr(expectation, "column", None)
        on = f" on {column}" if column else ""
        # What Data Docs shows for it: the check's name (the README's), then the rule.
        expectation.description = f"{name}: {expectation.expectation_type}{on}"
        out.append(Check(name, expectation, name in batch_level))
    return out


def source_checks(cfg: QualityConfig) -> list[Check]:
    return _checks(
        {
            "source_has_video_stream": gxe.ExpectColumnValuesToBeInSet(
                column="has_video_stream", value_set=[True]
            ),
            "source_decodable": gxe.ExpectColumnValuesToBeBetween(
                column="decoded_frames", min_value=2
            ),
            "source_duration_in_bounds": gxe.ExpectColumnValuesToBeBetween(
                column="duration_s", min_value=cfg.min_source_s, max_value=cfg.max_source_s
            ),
            "source_fps_in_bounds": gxe.ExpectColumnValuesToBeBetween(
                column="fps", min_value=cfg.min_fps, max_value=cfg.max_fps
            ),
            "source_width_above_floor": gxe.ExpectColumnValuesToBeBetween(
                column="width", min_value=cfg.min_width
            ),
            "source_height_above_floor": gxe.ExpectColumnValuesToBeBetween(
                column="height", min_value=cfg.min_height
            ),
        },
        set(),
    )


def clip_checks(cfg: QualityConfig, embedding_dim: int) -> list[Check]:
    return _checks(
        {
            # clips
            "clip_id_present": gxe.ExpectColumnValuesToNotBeNull(column="clip_id"),
            "clip_id_unique": gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
            "clip_duration_in_bounds": gxe.ExpectColumnValuesToBeBetween(
                column="duration_s", min_value=cfg.min_clip_s, max_value=cfg.max_clip_s
            ),
            "clip_has_no_transition_inside": gxe.ExpectColumnValuesToBeBetween(
                column="transitions_inside", min_value=0, max_value=0
            ),
            "aesthetic_in_range": gxe.ExpectColumnValuesToBeBetween(
                column="aesthetic_score", min_value=0, max_value=10
            ),
            "motion_in_range": gxe.ExpectColumnValuesToBeBetween(
                column="motion_score", min_value=0, max_value=1
            ),
            "keyframes_ordered_inside_clip": gxe.ExpectColumnValuesToBeInSet(
                column="keyframes_ok", value_set=[True]
            ),
            # captions
            "caption_present": gxe.ExpectColumnValuesToNotBeNull(column="caption"),
            "caption_word_count": gxe.ExpectColumnValuesToBeBetween(
                column="caption_words",
                min_value=cfg.min_caption_words,
                max_value=cfg.max_caption_words,
            ),
            "caption_no_boilerplate": gxe.ExpectColumnValuesToNotMatchRegexList(
                column="caption", regex_list=BOILERPLATE
            ),
            "caption_no_stock_opener": gxe.ExpectColumnValuesToNotMatchRegex(
                column="caption", regex=STOCK_OPENER
            ),
            "caption_repetition_below_max": gxe.ExpectColumnValuesToBeBetween(
                column="caption_repetition", min_value=0, max_value=cfg.max_repetition
            ),
            "caption_not_shared_by_many": gxe.ExpectColumnValuesToBeBetween(
                column="caption_shared_by", min_value=1, max_value=cfg.max_shared_caption
            ),
            "differential_times_increasing": gxe.ExpectColumnValuesToBeInSet(
                column="differential_ok", value_set=[True]
            ),
            # embeddings
            "embedding_dimension": gxe.ExpectColumnValuesToBeBetween(
                column="embedding_dim", min_value=embedding_dim, max_value=embedding_dim
            ),
            "embedding_finite": gxe.ExpectColumnValuesToBeInSet(
                column="embedding_finite", value_set=[True]
            ),
            "embedding_unit_norm": gxe.ExpectColumnValuesToBeBetween(
                column="embedding_norm",
                min_value=1 - cfg.norm_tolerance,
                max_value=1 + cfg.norm_tolerance,
            ),
        },
        {"clip_id_unique"},
    )
