"""Streaming execution: preparation runs ahead of captioning, landing runs behind it.

    main thread ──submit prepare-object (task runner: threads, Dask or Ray)──┐
        ▲  results as they finish                                           │
        └── clips of each prepared object ─▶ ClipBuffer (bounded: clips, keyframe bytes)
                                                 │ take(): whatever is ready
                                   caption thread: the captioner's pool, refilled clip by
                                                 │ clip across objects, never drained
                                                 ▼ an object is finished when its last clip is
                                   lander thread: batches of finished objects ─▶ land-batch
                                                 (embed, gate, sinks, then the ledger)

The captioner is the expensive resource: the buffer is kept full while there is work,
and a new object is prepared only while the buffer has room, so memory stays flat. An
infrastructure fault fails only the objects it touched (their ledger rows say `failed`
and the next run retries them); a captioner failing clip after clip, or a store that
cannot be written, stops the run cleanly: the rest is recorded `failed` too, and the
report still gets written.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect.utilities.annotations import quote

from flows import progress
from flows.config import PIPELINE_VERSION, RunConfig
from flows.landing import Landed, Outcome, Sink, land_batch_task, sinks_store
from flows.terminal import visible
from storage.ledger import Ledger, LedgerEntry, Status
from storage.records import ClipRecord, VideoRecord
from storage.types import ObjectRef
from tasks import media
from tasks.stages import ClipStage

log = logging.getLogger(__name__)


class ClipBuffer:
    """The bounded buffer between preparation and captioning (a ClipFeed).

    A clip counts against the bounds from the moment it is put until the captioner is
    done with it, so what is held in memory (keyframes included) is what the bounds say,
    whatever the bucket's size. A clip of an object that has already failed is skipped."""

    def __init__(
        self,
        max_clips: int,
        max_bytes: float,
        on_release: Callable[[], None],
        on_skip: Callable[[ClipRecord], None],
    ) -> None:
        self.max_clips = max_clips
        self.max_bytes = max_bytes
        self._ready: deque[ClipRecord] = deque()
        self._held_clips = 0
        self._held_bytes = 0
        self._closed = False
        self._cond = threading.Condition()
        self._on_release = on_release
        self._on_skip = on_skip
        self.peak_clips = 0
        self.peak_bytes = 0

    def has_room(self) -> bool:
        with self._cond:
            return self._held_clips < self.max_clips and self._held_bytes < self.max_bytes

    def put(self, clips: Sequence[ClipRecord]) -> None:
        with self._cond:
            self._ready.extend(clips)
            self._held_clips += len(clips)
            self._held_bytes += sum(c.keyframe_bytes() for c in clips)
            self.peak_clips = max(self.peak_clips, self._held_clips)
            self.peak_bytes = max(self.peak_bytes, self._held_bytes)
            self._cond.notify_all()

    cancelled = False  # set when the run stops: captioners start no new step

    def take(self, limit: int, wait: bool) -> list[ClipRecord] | None:
        while True:
            taken, skipped = [], []
            with self._cond:
                while wait and not self._ready and not self._closed:
                    self._cond.wait()
                if not self._ready:
                    return None if self._closed else []
                while self._ready and len(taken) < limit:
                    clip = self._ready.popleft()
                    failed = clip.video is not None and clip.video.failed
                    (skipped if failed else taken).append(clip)
            for clip in skipped:  # its object failed already: captioning it is waste
                self._on_skip(clip)
            if taken or not wait:
                return taken

    def release(self, clip: ClipRecord) -> None:
        with self._cond:
            self._held_clips -= 1
            self._held_bytes -= clip.keyframe_bytes()
        self._on_release()

    def close(self) -> None:
        """No more clips will be put: takers finish what is left, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self) -> list[ClipRecord]:
        """Close and hand back every clip not yet taken (a run that is stopping)."""
        with self._cond:
            self._closed = True
            self.cancelled = True
            left = list(self._ready)
            self._ready.clear()
            self._cond.notify_all()
            return left


@dataclass
class StreamResult:
    landed: list[Landed] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    funnel: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    checks: dict[str, list[int]] = field(default_factory=dict)
    stopped: str = ""  # why the run stopped early, if it did
    peak_buffer_clips: int = 0
    peak_buffer_mb: float = 0.0


_END = object()
OUTCOME_WORDS = {Status.DONE: "landed", Status.QUARANTINED: "quarantined", Status.FAILED: "failed"}


class StreamingRun:
    """One run's objects through preparation, captioning and landing, all at once."""

    def __init__(
        self,
        config: RunConfig,
        run_id: str,
        prepare: Any,  # the prepare-object task (cached or not, tagged or not)
        captioner: Any,
        embedder: Any,
        sinks: Sequence[Sink],
        stages: Sequence[ClipStage],
        land: Any = land_batch_task,
    ) -> None:
        self.config = config
        self.run_id = run_id
        self.prepare = prepare
        self.captioner = captioner
        self.embedder = embedder
        self.sinks = list(sinks)
        self.stages = list(stages)
        self.extra = tuple(f for s in self.stages for f in s.columns)
        self.land = land
        self.result = StreamResult()
        self._events: queue.Queue[Any] = queue.Queue()  # prepare results, wake-ups
        self.buffer = ClipBuffer(
            config.stream.max_clips,
            config.stream.max_keyframe_mb * 1e6,
            on_release=lambda: self._events.put(None),
            on_skip=lambda clip: self._captioned(clip, None),
        )
        self._finished: queue.Queue[Any] = queue.Queue()  # objects ready to land
        self._uncaptioned: dict[ObjectRef, int] = {}
        self._lock = threading.Lock()
        self._failures_in_a_row = 0
        self._stopping = ""
        self._store_broken = ""
        self._interrupted = False

    # -- control -------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop taking work; what is not finished yet is recorded failed with `reason`."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = reason
        log.error("stopping the run: %s", reason)
        for clip in self.buffer.drain():
            if clip.video is not None and not clip.video.failure:
                clip.video.failure = f"not captioned: {reason}"
            self._captioned(clip, reason)
        self._events.put(None)

    # -- the three loops -----------------------------------------------------------------

    def run(self, objects: Sequence[ObjectRef]) -> StreamResult:
        context = contextvars.copy_context()  # the flow run's, for the land-batch task runs
        caption_thread = threading.Thread(
            target=self._caption_loop, name="capflow-caption", daemon=True
        )
        lander = threading.Thread(
            target=context.run, args=(self._land_loop,), name="capflow-land", daemon=True
        )
        media.allow_new()
        caption_thread.start()
        lander.start()
        try:
            self._dispatch(list(objects))
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM, a cancelled flow run): kill the decoders, land
            # nothing more. What has not landed is not in the ledger: the next run does it.
            self._interrupted = True
            media.stop_all()
            self.stop("interrupted")
            self._finished.put(_END)
            caption_thread.join(timeout=5)
            lander.join(timeout=5)
            raise
        self.buffer.close()
        caption_thread.join()
        self._finished.put(_END)
        lander.join()
        self.result.stopped = self._stopping
        self.result.peak_buffer_clips = self.buffer.peak_clips
        self.result.peak_buffer_mb = round(self.buffer.peak_bytes / 1e6, 1)
        return self.result

    def _dispatch(self, objects: list[ObjectRef]) -> None:
        todo = deque(objects)
        in_flight = 0
        # Twice the workers in flight: when one object finishes, the next is already
        # queued in the task runner, so no worker waits on this loop or on Prefect's
        # bookkeeping for its next object.
        ahead = 2 * max(1, self.config.max_workers)
        while todo or in_flight:
            while todo and in_flight < ahead and not self._stopping:
                if not self.buffer.has_room():
                    break
                obj = todo.popleft()
                future = self.prepare.submit(obj, self.config)
                future.add_done_callback(lambda f, obj=obj: self._events.put((obj, f)))
                in_flight += 1
            if self._stopping and todo:
                for obj in todo:
                    self._finish(VideoRecord(obj, failure=f"not attempted: {self._stopping}"))
                todo.clear()
            if not (todo or in_flight):
                break
            event = self._events.get()  # a prepared object, or room in the buffer
            if event is None:  # room in the buffer, or a stop: look again
                continue
            obj, future = event
            in_flight -= 1
            try:
                video = future.result()
            except Exception as e:  # an infrastructure fault that outlived the retries
                log.error("preparing %s failed: %s", visible(obj.uri), visible(str(e)))
                video = VideoRecord(obj, failure=f"{type(e).__name__}: {e}"[:500])
            self._prepared(video)

    def _prepared(self, video: VideoRecord) -> None:
        self._count_stages(video)
        progress.emit("prepared", f"{len(video.alive_clips())} {video.obj.uri}")
        alive = video.alive_clips()
        if self._stopping and not video.failed:
            video.failure = f"not captioned: {self._stopping}"
        if video.failed or not alive:
            self._finish(video)
            return
        with self._lock:
            self._uncaptioned[video.obj] = len(alive)
        self.buffer.put(alive)

    def _caption_loop(self) -> None:
        try:
            self.captioner.stream(self.buffer, self._captioned)
        except Exception as e:  # a captioner bug, not a fault of one clip
            log.exception("the captioner stopped")
            self.stop(f"the captioner stopped: {type(e).__name__}: {e}")

    def _captioned(self, clip: ClipRecord, failure: str | None) -> None:
        self.buffer.release(clip)
        video = clip.video
        assert video is not None
        limit = self.config.stream.max_consecutive_caption_failures
        with self._lock:
            if failure:
                video.failure = video.failure or f"caption: {failure}"
                self._failures_in_a_row += 1
            elif clip.caption is not None:
                self._failures_in_a_row = 0
            left = self._uncaptioned[video.obj] = self._uncaptioned[video.obj] - 1
            down = self._failures_in_a_row >= limit and not self._stopping
        if failure is None and clip.caption is not None:
            self.result.seconds["caption"] += clip.caption.seconds
            progress.emit("captioned", video.obj.uri)
        if left == 0:
            with self._lock:
                del self._uncaptioned[video.obj]
            self._finish(video)
        if down:
            self.stop(f"the captioner failed {limit} clips in a row (last: {failure})")

    def _finish(self, video: VideoRecord) -> None:
        self._finished.put(video)

    def _land_loop(self) -> None:
        waiting: list[VideoRecord] = []
        since = 0.0
        batch = max(1, self.config.chunk_objects)
        patience = self.config.stream.land_after_s
        while True:
            timeout = max(0.0, since + patience - time.monotonic()) if waiting else None
            try:
                item = self._finished.get(timeout=timeout)
            except queue.Empty:
                item = None  # the oldest has waited long enough
            if item is not None and item is not _END:
                if not waiting:
                    since = time.monotonic()
                waiting.append(item)
            if waiting and (item is None or item is _END or len(waiting) >= batch):
                self._land(waiting)
                waiting = []
            if item is _END:
                return

    def _land(self, videos: list[VideoRecord]) -> None:
        if self._interrupted:
            return
        landed = None
        if not self._store_broken:
            started = time.perf_counter()
            try:
                landed = self.land(
                    quote(videos), self.config, self.run_id, self.embedder, self.sinks, self.extra
                )
            except Exception as e:  # the store is down or unwritable past the retries
                self._store_broken = f"{type(e).__name__}: {e}"[:500]
                log.error("landing failed: %s", self._store_broken)
                self.stop(f"the store could not be written: {self._store_broken}")
            self.result.seconds["land"] += time.perf_counter() - started
        if landed is None:
            landed = self._record_failed(videos)
        self._collect(landed)

    def _record_failed(self, videos: list[VideoRecord]) -> Landed:
        """Objects that could not land: `failed` in the ledger where it can still be
        written (where not, they are simply not done, and the next run redoes them)."""
        error = self._store_broken or "not landed"
        outcomes = [
            Outcome(v.obj.uri, Status.FAILED, 0, [], v.failure or f"landing: {error}")
            for v in videos
        ]
        entries = [
            LedgerEntry(v.obj, Status.FAILED, 0, o.error)
            for v, o in zip(videos, outcomes, strict=True)
        ]
        try:
            Ledger(sinks_store(self.sinks)).record_many(entries, self.run_id, PIPELINE_VERSION)
        except Exception as e:
            log.warning("the ledger could not record %d failed object(s): %s", len(entries), e)
        return Landed(outcomes)

    # -- bookkeeping ---------------------------------------------------------------------

    def _count_stages(self, video: VideoRecord) -> None:
        funnel = self.result.funnel
        funnel["clips_cut"] += len(video.clips)
        for clip in video.clips:
            stopped_at = clip.rejection.stage if clip.rejection else None
            for stage in self.stages:
                if stage.name == stopped_at:
                    break
                funnel[stage.name] += 1
        self.result.seconds.update(video.seconds)
        for name, ok in video.checks.items():
            counts = self.result.checks.setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += not ok

    def _collect(self, landed: Landed) -> None:
        self.result.landed.append(landed)
        self.result.outcomes += landed.outcomes
        for name, (n, bad) in landed.checks.items():
            counts = self.result.checks.setdefault(name, [0, 0])
            counts[0] += n
            counts[1] += bad
        self.result.seconds.update(landed.seconds)
        self.result.funnel["clips_captioned"] += landed.clips_gated
        self.result.funnel["clips_passed_gate"] += landed.clips_gated - landed.clips_failed_gate
        self.result.funnel["clips_landed"] += len(landed.metrics)
        self.result.funnel["clips_marked_duplicate"] += landed.duplicates
        for o in landed.outcomes:
            progress.emit("finished", f"{OUTCOME_WORDS[o.status]} {o.uri}")
