"""Pick a clip's keyframes with ShareGPT4Video's released policy, fixed where it was wrong.

- A candidate every `interval_s`; frame 0 always kept; a candidate is kept when its
  image-feature cosine similarity to the *last kept* keyframe is below the threshold
  (0.93 with CLIP, as released); the clip's last frame is added when only one keyframe
  was kept or the tail after the last keyframe is at least one interval long; leading
  uniform frames (black) are skipped, up to one interval; frames are stored at most
  `max_side` pixels on the long side.
- Fixes: each keyframe keeps its true presentation time (the original assumed
  index x 2 s, wrong once frames are dropped: its issue #34), and decoding streams the
  candidates (ffmpeg's select filter) instead of holding the whole video in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.records import ClipRecord
from storage.types import ClipSpan, Keyframe, ProbeInfo, Rejection, RejectReason
from tasks import media
from tasks.features import ImageFeaturizer, load_featurizer

STAGE = "keyframes"


@dataclass(frozen=True)
class KeyframeConfig:
    interval_s: float = 2.0
    similarity_threshold: float = 0.93  # keep a candidate less similar than this
    max_side: int = 1024  # long side of stored frames, in pixels
    clip_model: str | None = None  # CLIP for similarity; None = model-free thumbnails
    timeout_s: float = 300.0

    def build(self) -> KeyframeStage:
        return KeyframeStage(self)


def frame_size(probe: ProbeInfo, max_side: int) -> tuple[int, int]:
    """Display size (rotation applied, as ffmpeg autorotates) scaled to max_side, even."""
    w, h = probe.display_size
    scale = min(1.0, max_side / max(w, h))
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def is_uniform(img: np.ndarray) -> bool:
    """One colour all over (a black or blank frame), allowing for compression noise."""
    return float(img.std()) < 2.0


def _frames(
    path: Path,
    probe: ProbeInfo,
    start: float,
    duration: float,
    cfg: KeyframeConfig,
    every: float | None,
) -> Iterator[media.Frame]:
    width, height = frame_size(probe, cfg.max_side)
    select = f"isnan(prev_selected_t)+gte(t-prev_selected_t\\,{every})" if every else None
    yield from media.stream_frames(
        path,
        width,
        height,
        cfg.timeout_s,
        start_s=start,
        duration_s=duration,
        select=select,
        stream_index=probe.stream_index,
    )


def _first_content_frame(
    path: Path, probe: ProbeInfo, clip: ClipSpan, cfg: KeyframeConfig
) -> media.Frame | None:
    """The first non-uniform frame within one interval of the clip's start."""
    window = min(cfg.interval_s, clip.duration_s)
    return next(
        (f for f in _frames(path, probe, clip.start_s, window, cfg, None) if not is_uniform(f.rgb)),
        None,
    )


def _last_frame(
    path: Path, probe: ProbeInfo, clip: ClipSpan, cfg: KeyframeConfig
) -> media.Frame | None:
    tail = min(clip.duration_s, 1.0)
    last = None
    for f in _frames(path, probe, clip.end_s - tail, tail, cfg, None):
        last = f
    return last


def select_keyframes(
    candidates: list[media.Frame], featurizer: ImageFeaturizer, threshold: float
) -> list[Keyframe]:
    """The policy's core: keep a candidate unlike the last kept one (cosine < threshold)."""
    if not candidates:
        return []
    features = featurizer.embed([c.rgb for c in candidates])
    kept = [0]
    for i in range(1, len(candidates)):
        if float(features[i] @ features[kept[-1]]) < threshold:
            kept.append(i)
    return [
        Keyframe(round(candidates[i].t, 3), candidates[i].rgb.copy(), features[i], featurizer.name)
        for i in kept
    ]


def extract_keyframes(
    path: Path, probe: ProbeInfo, clip: ClipSpan, cfg: KeyframeConfig
) -> list[Keyframe] | Rejection:
    featurizer = load_featurizer(cfg.clip_model)
    span = (clip.start_s, clip.end_s)
    try:
        candidates = list(_frames(path, probe, clip.start_s, clip.duration_s, cfg, cfg.interval_s))
        if candidates and is_uniform(candidates[0].rgb):
            first = _first_content_frame(path, probe, clip, cfg)
            rest = [c for c in candidates[1:] if first is None or c.t > first.t]
            candidates = ([first] if first is not None else candidates[:1]) + rest
        kept = select_keyframes(candidates, featurizer, cfg.similarity_threshold)
        if kept:
            last = _last_frame(path, probe, clip, cfg)
            if (
                last is not None
                and last.t > kept[-1].t
                and (len(kept) == 1 or last.t - kept[-1].t >= cfg.interval_s)
            ):
                feature = featurizer.embed([last.rgb])[0]
                kept.append(Keyframe(round(last.t, 3), last.rgb.copy(), feature, featurizer.name))
    except media.MediaTimeout as e:
        return Rejection(STAGE, RejectReason.DECODE_TIMEOUT, str(e), span)
    except media.MediaError as e:
        return Rejection(STAGE, RejectReason.DECODE_FAILED, str(e), span)
    if not kept:
        return Rejection(STAGE, RejectReason.DECODE_FAILED, "no frame decoded", span)
    return kept


class KeyframeStage:
    """The clip's keyframes, decoded from the object's local copy."""

    name = STAGE
    columns = ()
    needs = ()
    provides = ("keyframes",)

    def __init__(self, config: KeyframeConfig) -> None:
        self.config = config

    def __call__(self, clip: ClipRecord) -> ClipRecord | Rejection:
        video = clip.video
        if video is None or video.path is None or video.probe is None:
            raise ValueError("the keyframes stage needs the clip's video, probed and on disk")
        keyframes = extract_keyframes(video.path, video.probe, clip.span, self.config)
        if isinstance(keyframes, Rejection):
            return keyframes
        clip.keyframes = keyframes
        return clip
