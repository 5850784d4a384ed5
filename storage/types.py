"""Records that travel between stages.

Every record carries the identity of its source object (bucket, key, ETag) or is paired
with it by the caller, so any landed or quarantined row traces back to one object version.
Frames are numpy arrays (H x W x 3, uint8, RGB) because every consumer (scorer, captioner,
embedder) wants pixels, not files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np


class RejectReason(StrEnum):
    """The closed list of reasons a video or clip is quarantined."""

    EMPTY_OBJECT = "empty_object"
    NOT_VIDEO = "not_video"
    NO_VIDEO_STREAM = "no_video_stream"
    PROBE_FAILED = "probe_failed"
    PROBE_TIMEOUT = "probe_timeout"
    DECODE_FAILED = "decode_failed"
    DECODE_TIMEOUT = "decode_timeout"
    OUT_OF_BOUNDS = "out_of_bounds"
    SOURCE_CHANGED = "source_changed"
    SOURCE_MISSING = "source_missing"
    NO_CLIPS = "no_clips"
    LOW_AESTHETIC = "low_aesthetic"
    STATIC = "static"
    TEXT_OVERLAY = "text_overlay"
    ENCODE_FAILED = "encode_failed"
    CAPTION_FAILED = "caption_failed"
    QUALITY_FAILED = "quality_failed"


@dataclass(frozen=True)
class Rejection:
    """A stage's verdict that its input cannot go on; becomes a quarantine row."""

    stage: str
    reason: RejectReason
    detail: str = ""
    span: tuple[float, float] | None = None
    score: float | None = None


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object (or file of a local folder) at one version (ETag): the unit of work."""

    bucket: str
    key: str
    etag: str
    size: int
    last_modified: datetime

    @property
    def uri(self) -> str:
        if self.bucket.startswith("/"):  # a local folder as a bucket (storage/local.py)
            return f"file://{self.bucket}/{self.key}"
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ProbeInfo:
    """What ffprobe (or PyAV) says about a file, after our own sanity checks."""

    format_name: str
    duration_s: float
    width: int
    height: int
    fps: float
    codec: str
    has_audio: bool
    rotation: int = 0  # the display matrix's rotation, degrees
    stream_index: int = 0  # the container's index of the video stream probed and decoded

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown (and as ffmpeg decodes, autorotating)."""
        turned = self.rotation in (90, 270)
        return (self.height, self.width) if turned else (self.width, self.height)


@dataclass(frozen=True)
class Transition:
    """A boundary between shots. For a cut, start_frame == end_frame == first new frame."""

    kind: str  # "cut" | "gradual"
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    score: float


@dataclass(frozen=True)
class ShotAnalysis:
    """What the decode pass found: frame times, per-frame change and the transitions."""

    times: list[float]
    motion: list[float]
    velocity: list[tuple[float, float]]  # image motion, frame widths/heights per second
    transitions: list[Transition]


@dataclass(frozen=True)
class ClipSpan:
    """A transition-free stretch of one video, in seconds of presentation time."""

    index: int
    start_s: float
    end_s: float
    motion_score: float = 0.0  # mean change between consecutive frames, 0..1
    # (t, vx, vy) per analysed frame: image motion in frame widths/heights per second
    motion_track: tuple[tuple[float, float, float], ...] = ()

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, eq=False)
class Keyframe:
    """One decoded frame with its true presentation timestamp in the source video, and the
    image feature that chose it (CLIP's embedding, or the model-free thumbnail feature)."""

    t: float
    image: np.ndarray
    feature: np.ndarray | None = None
    feature_name: str = ""


@dataclass(frozen=True)
class DiffCaption:
    """One DiffSW step: keyframe 0's description, or what changed up to time t."""

    t: float
    text: str


@dataclass(frozen=True)
class Caption:
    """A clip's captions: the differential steps and the timed summary."""

    text: str
    differential: list[DiffCaption]
    model: str
    mode: str
    prompt_version: str
    seconds: float = 0.0  # model time spent on this clip (its share of batched calls)


def stable_id(*parts: object) -> str:
    """A deterministic id: the same inputs always give the same id, across runs and hosts."""
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def clip_id(obj: ObjectRef, span: ClipSpan) -> str:
    """Clip identity: source object version plus the span, rounded to the millisecond."""
    return stable_id(obj.bucket, obj.key, obj.etag, round(span.start_s, 3), round(span.end_s, 3))
