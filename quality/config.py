"""The quality bar's settings, and the checks cheap enough to run before any decode.

Kept apart from quality/suites.py so that reading a config (every command does) does not
import great-expectations: the suites are built only where a batch is validated.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.types import ProbeInfo, Rejection, RejectReason


@dataclass(frozen=True)
class QualityConfig:
    # sources
    min_width: int = 64
    min_height: int = 64
    min_fps: float = 5.0
    max_fps: float = 240.0
    min_source_s: float = 0.5
    max_source_s: float = 4 * 3600.0
    # clips
    min_clip_s: float = 0.5
    max_clip_s: float = 600.0
    # captions
    min_caption_words: int = 5
    max_caption_words: int = 1500
    max_repetition: float = 0.5  # share of repeated word 3-grams
    max_shared_caption: int = 3  # clips of one source video allowed the same caption text
    # embeddings
    norm_tolerance: float = 1e-3
    # the run
    max_failed_fraction: float = 0.5  # more than this share of gated clips failing fails the run
    data_docs: bool = True


def precheck_source(probe: ProbeInfo, cfg: QualityConfig) -> Rejection | None:
    """The source bounds, on what the probe declares, before anything is decoded: a tiny
    picture, an absurd frame rate or a duration outside the bounds costs no decode. The
    sources suite checks the same bounds again on what the decode pass found."""
    width, height = probe.display_size
    problems = []
    if width < cfg.min_width or height < cfg.min_height:
        problems.append(
            f"size {width}x{height} under {cfg.min_width}x{cfg.min_height} "
            "(quality.min_width, quality.min_height)"
        )
    if probe.fps and not (cfg.min_fps <= probe.fps <= cfg.max_fps):
        problems.append(
            f"frame rate {probe.fps:g} outside {cfg.min_fps:g}..{cfg.max_fps:g} "
            "(quality.min_fps, quality.max_fps)"
        )
    if not (cfg.min_source_s <= probe.duration_s <= cfg.max_source_s):
        problems.append(
            f"duration {probe.duration_s:.2f} s outside {cfg.min_source_s:g}.."
            f"{cfg.max_source_s:g} s (quality.min_source_s, quality.max_source_s)"
        )
    if problems:
        return Rejection("probe", RejectReason.OUT_OF_BOUNDS, "; ".join(problems))
    return None
