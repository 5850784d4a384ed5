"""Differential Sliding-Window captioning with wavefront batching.

Steps inside a clip are sequential (each differential step needs the previous caption);
clips are independent. Two ways to keep the model busy, chosen by the backend:

- A batching model (`hf:`, one process, one forward pass for many prompts): a pool of
  clips advances one step at a time, each step of every clip in the pool in one batched
  call; finished clips leave the pool and whatever clips are ready refill it before the
  next call (ShareGPT4Video's batch script does this with a pool of 2). On out-of-memory
  the batch is halved and retried; a request that fails alone fails its clip.
- A server that batches whatever is in flight (`openai:` against vLLM or SGLang): one
  chain per slot, each sending its clip's next step the moment the last one answers, so
  the server's slots never wait for the slowest request of a round.

Clips come from a `ClipFeed` (the streaming pipeline's buffer, or a plain list), so the
pool never drains at a batch boundary. An infrastructure fault (server down, timeouts past
the backend's retries) fails the clips it touched through `done(clip, failure)`; it never
raises out of the captioner.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from storage.records import ClipRecord
from storage.types import Caption, DiffCaption, Rejection, RejectReason
from tasks import prompts
from tasks.backends.protocol import BackendOutOfMemory, GenerationRequest, VisionLanguageModel
from tasks.caption_text import clean_caption
from tasks.feed import ClipFeed, Done

STAGE = "caption"
log = logging.getLogger(__name__)


def stack_vertically(
    images: list[np.ndarray], gap: int = 50, labels: list[str] | None = None
) -> np.ndarray:
    """One tall image: frames top to bottom at a common width, white gaps, optional labels."""
    from PIL import Image, ImageDraw

    width = max(img.shape[1] for img in images)
    parts = []
    for img in images:
        h = round(img.shape[0] * width / img.shape[1])
        parts.append(np.asarray(Image.fromarray(img).resize((width, h))))
    label_h = 16 if labels else 0
    total = sum(p.shape[0] + label_h for p in parts) + gap * (len(parts) - 1)
    canvas = Image.new("RGB", (width, total), "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for i, part in enumerate(parts):
        if labels:
            draw.text((4, y + 2), labels[i], fill="black")
            y += label_h
        canvas.paste(Image.fromarray(part), (0, y))
        y += part.shape[0] + gap
    return np.asarray(canvas)


@dataclass
class _Job:
    """One clip's progress through its DiffSW steps."""

    clip: ClipRecord
    steps: list[DiffCaption] = field(default_factory=list)
    seconds: float = 0.0
    calls: int = 0
    result: Caption | Rejection | None = None


@dataclass(frozen=True)
class DiffSWOptions:
    mode: str = "diffsw"  # or "fast"
    pool_size: int = 8
    stack_pairs: bool = False  # one stacked image per step, for single-image models
    summary_words: int = 300
    max_batch: int = 64


class _Cancelled(Exception):
    pass


def _fault(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


class DiffSWCaptioner:
    """A Captioner over any VisionLanguageModel."""

    prompt_version = prompts.PROMPT_VERSION

    def __init__(self, model: VisionLanguageModel, options: DiffSWOptions) -> None:
        self.model = model
        self.options = options
        self.name = model.name
        self.mode = options.mode
        self.batches: list[int] = []  # sizes of the model calls made, for inspection
        # > 0: a server with this many requests in flight at once; 0: a batching model
        self.slots = int(getattr(model, "concurrency", 0) or 0)

    # -- the steps -----------------------------------------------------------------------

    def _request(self, job: _Job) -> GenerationRequest:
        kfs = job.clip.keyframes
        k = len(job.steps)
        if self.mode == "fast":
            times = [kf.t for kf in kfs]
            labels = [f"<IMAGE {i}> {t:.2f} s" for i, t in enumerate(times)]
            image = stack_vertically([kf.image for kf in kfs], gap=8, labels=labels)
            return GenerationRequest(prompts.fast_prompt(times), [image])
        if k == 0:
            return GenerationRequest(prompts.first_frame_prompt(kfs[0].t), [kfs[0].image])
        if k < len(kfs):
            prev, cur = kfs[k - 1], kfs[k]
            pair = [prev.image, cur.image]
            images = [stack_vertically(pair)] if self.options.stack_pairs else pair
            text = prompts.differential_prompt(
                prev.t, cur.t, job.steps[-1].text, self.options.stack_pairs
            )
            return GenerationRequest(text, images)
        return GenerationRequest(prompts.summary_prompt(job.steps, self.options.summary_words))

    def _accept(self, job: _Job, reply: str | None, seconds: float) -> None:
        job.seconds += seconds
        job.calls += 1
        span = (job.clip.span.start_s, job.clip.span.end_s)
        if reply is None:
            job.result = Rejection(STAGE, RejectReason.CAPTION_FAILED, "out of memory", span)
            return
        text = clean_caption(reply)
        kfs = job.clip.keyframes
        if self.mode == "fast" or len(job.steps) == len(kfs):
            if not text:
                job.result = Rejection(STAGE, RejectReason.CAPTION_FAILED, "empty caption", span)
                return
            job.result = Caption(
                text, job.steps, self.name, self.mode, self.prompt_version, round(job.seconds, 4)
            )
        else:
            job.steps.append(DiffCaption(kfs[len(job.steps)].t, text))

    @staticmethod
    def _finish(job: _Job, done: Done) -> None:
        if isinstance(job.result, Caption):
            job.clip.caption = job.result
        elif job.result is not None:
            job.clip.reject(job.result)
        done(job.clip, None)

    # -- batching ------------------------------------------------------------------------

    def _generate(self, requests: list[GenerationRequest]) -> list[tuple[str | None, float]]:
        """Replies with each request's share of wall time; halves the batch on OOM."""
        out: list[tuple[str | None, float]] = []
        size = min(len(requests), self.options.max_batch)
        start = 0
        while start < len(requests):
            chunk = requests[start : start + size]
            t0 = time.perf_counter()
            try:
                replies = self.model.generate(chunk)
            except BackendOutOfMemory:
                if size > 1:
                    size //= 2
                    continue
                out.append((None, time.perf_counter() - t0))
                start += 1
                continue
            self.batches.append(len(chunk))
            share = (time.perf_counter() - t0) / len(chunk)
            out += [(r, share) for r in replies]
            start += len(chunk)
        return out

    def stream(self, feed: ClipFeed, done: Done) -> None:
        """Caption every clip the feed gives until it closes; each finished clip (its
        caption or rejection filled in) goes to `done`."""
        if self.slots:
            self._stream_chains(feed, done)
        else:
            self._stream_wavefront(feed, done)

    def _stream_wavefront(self, feed: ClipFeed, done: Done) -> None:
        active: list[_Job] = []
        while True:
            room = self.options.pool_size - len(active)
            if room > 0:
                ready = feed.take(room, wait=not active)
                if ready is None and not active:
                    return
                active += [_Job(c) for c in ready or []]
            if not active:
                continue
            if feed.cancelled:  # the run is stopping: no new step
                for job in active:
                    done(job.clip, "cancelled: the run is stopping")
                active = []
                continue
            try:
                replies = self._generate([self._request(j) for j in active])
            except Exception as e:  # the backend is down past its own retries
                log.warning("captioning call failed for %d clip(s): %s", len(active), e)
                for job in active:
                    done(job.clip, _fault(e))
                active = []
                continue
            for job, (reply, seconds) in zip(active, replies, strict=True):
                self._accept(job, reply, seconds)
            for job in active:
                if job.result is not None:
                    self._finish(job, done)
            active = [j for j in active if j.result is None]

    def _stream_chains(self, feed: ClipFeed, done: Done) -> None:
        def chain() -> None:
            while (ready := feed.take(1, wait=True)) is not None:
                for clip in ready:
                    job = _Job(clip)
                    try:
                        while job.result is None:
                            if feed.cancelled:
                                raise _Cancelled("the run is stopping")
                            request = self._request(job)
                            t0 = time.perf_counter()
                            [(reply, _)] = self._generate([request])
                            self._accept(job, reply, time.perf_counter() - t0)
                    except Exception as e:  # the server is down past the backend's retries
                        log.warning("captioning failed for a clip: %s", e)
                        done(clip, _fault(e))
                        continue
                    self._finish(job, done)

        workers = [threading.Thread(target=chain, daemon=True) for _ in range(self.slots)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def caption(self, clips: list[ClipRecord]) -> list[Caption | Rejection]:
        from tasks.feed import caption_list

        return caption_list(self, clips)
