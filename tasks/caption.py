"""Caption clips with Differential Sliding-Window captioning (ShareGPT4Video).

Backends are chosen by name (`caption.captioner`) and loaded once per process. The one
shipped now is `describe`, the model-free offline default; model backends (`hf:`,
`openai:`) plug in behind the same Protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from storage.types import Caption, Rejection, RejectReason, ScoredClip
from tasks.wrap import stage_task

STAGE = "caption"


class Captioner(Protocol):
    name: str
    prompt_version: str
    mode: str

    def caption(self, clips: list[ScoredClip]) -> list[Caption]:
        """One Caption per clip, in order; a batch lets a backend batch its model calls."""
        ...


@dataclass(frozen=True)
class CaptionConfig:
    captioner: str = "describe"


@lru_cache(maxsize=4)
def load_captioner(spec: str) -> Captioner:
    if spec == "describe":
        from tasks.backends.describe import Describer

        return Describer()
    raise ValueError(
        f"unknown captioner {spec!r}: set caption.captioner to 'describe' (offline default)"
    )


def caption_clips(clips: list[ScoredClip], captioner: Captioner) -> list[Caption | Rejection]:
    """Captions for a batch; a clip whose caption comes back empty is a Rejection."""
    if not clips:
        return []
    out: list[Caption | Rejection] = []
    for clip, cap in zip(clips, captioner.caption(clips), strict=True):
        if not cap.text.strip():
            span = (clip.span.start_s, clip.span.end_s)
            out.append(Rejection(STAGE, RejectReason.CAPTION_FAILED, "empty caption", span))
        else:
            out.append(cap)
    return out


@stage_task("caption")
def caption_task(clips: list[ScoredClip], cfg: CaptionConfig) -> list[Caption | Rejection]:
    return caption_clips(clips, load_captioner(cfg.captioner))
