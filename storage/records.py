"""The two records that travel through the pipeline, filled in place by the stages.

A `VideoRecord` is one object version: what the download, probe and decode pass found,
the clips cut from it and what was refused at the object's level. A `ClipRecord` is one
clip of it: its span, then whatever the stages fill (keyframes, scores, caption, text
embedding) or the `Rejection` that stopped it. Landing reads rows and quarantine entries
straight off these records; nothing is matched back by position or by `id()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.types import (
    Caption,
    ClipSpan,
    Keyframe,
    ObjectRef,
    ProbeInfo,
    Rejection,
    Transition,
    clip_id,
)


@dataclass(eq=False)
class ClipRecord:
    span: ClipSpan
    video: VideoRecord | None = None  # None for a clip outside any object (tests, tools)
    num_frames: int | None = None  # decoded frames inside the span
    keyframes: list[Keyframe] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)  # column -> value, from the stages
    notes: dict[str, Any] = field(default_factory=dict)  # per-stage detail, never landed
    caption: Caption | None = None
    embedding: list[float] | None = None
    rejection: Rejection | None = None

    @property
    def clip_id(self) -> str:
        if self.video is None:
            raise ValueError("a clip outside any object has no clip_id")
        return clip_id(self.video.obj, self.span)

    @property
    def alive(self) -> bool:
        """Not refused by any stage so far."""
        return self.rejection is None

    def reject(self, rejection: Rejection) -> None:
        if self.rejection is None:  # the first refusal is the reason
            self.rejection = rejection

    def keyframe_bytes(self) -> int:
        return sum(k.image.nbytes for k in self.keyframes)


@dataclass(eq=False)
class VideoRecord:
    obj: ObjectRef
    path: Path | None = None  # the local copy, only while the object is being prepared
    probe: ProbeInfo | None = None
    decoded_frames: int = 0
    decoded_duration_s: float | None = None
    transitions: list[Transition] = field(default_factory=list)
    clips: list[ClipRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)  # the object's own refusals
    seconds: dict[str, float] = field(default_factory=dict)  # per stage
    checks: dict[str, bool] = field(default_factory=dict)  # sources suite: check -> passed
    failure: str | None = None  # an infrastructure fault: the object is retried next run

    def add_clip(self, span: ClipSpan, num_frames: int | None = None) -> ClipRecord:
        clip = ClipRecord(span, self, num_frames)
        self.clips.append(clip)
        return clip

    def alive_clips(self) -> list[ClipRecord]:
        return [c for c in self.clips if c.alive]

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def __getstate__(self) -> dict[str, Any]:
        # The local copy is gone once preparation ends; a cached record never names it.
        return {**self.__dict__, "path": None}
