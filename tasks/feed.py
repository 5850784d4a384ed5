"""Where a captioner takes its clips from, and how it hands them back.

The streaming pipeline's bounded buffer (flows/streaming.py) and a plain list both offer
`take`; a captioner fills each clip's `caption` (or its rejection) and calls `done`, with a
failure text instead when an infrastructure fault stopped the clip.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from storage.records import ClipRecord
from storage.types import Caption, Rejection

Done = Callable[[ClipRecord, "str | None"], None]


class ClipFeed(Protocol):
    cancelled: bool  # a stopping run: captioners finish the step at hand, start no new one

    def take(self, limit: int, wait: bool) -> list[ClipRecord] | None:
        """Up to `limit` clips ready now; with `wait`, block until at least one is. None
        once the feed is closed and empty: no clip will come any more."""
        ...


class CaptionerUnavailable(RuntimeError):
    """The captioning backend failed past its retries (a server down, say)."""


class ListFeed:
    """A fixed list of clips as a feed."""

    cancelled = False

    def __init__(self, clips: Sequence[ClipRecord]) -> None:
        self._clips = deque(clips)
        self._lock = threading.Lock()

    def take(self, limit: int, wait: bool) -> list[ClipRecord] | None:
        with self._lock:
            if not self._clips:
                return None
            return [self._clips.popleft() for _ in range(min(limit, len(self._clips)))]


class Streams(Protocol):
    def stream(self, feed: ClipFeed, done: Done) -> None: ...


def caption_list(captioner: Streams, clips: Sequence[ClipRecord]) -> list[Caption | Rejection]:
    """Caption a list (a single video's clip, a benchmark's set): the same streaming code
    path as the pipeline, results in the list's order. A fault raises here: a one-off
    command has nothing to retry later."""
    failures: list[str] = []
    lock = threading.Lock()

    def done(clip: ClipRecord, failure: str | None) -> None:
        if failure:
            with lock:
                failures.append(failure)

    captioner.stream(ListFeed(clips), done)
    if failures:
        raise CaptionerUnavailable(f"captioning failed: {failures[0]}")
    out: list[Caption | Rejection] = []
    for clip in clips:
        if clip.rejection is not None:
            out.append(clip.rejection)
        elif clip.caption is not None:
            out.append(clip.caption)
        else:
            raise AssertionError("the captioner returned a clip with neither caption nor refusal")
    return out
