"""Find shot boundaries in one streamed, low-resolution decode pass.

Signal: the mean absolute difference between consecutive tiny frames (area-downscaled,
so noise and fine motion average out). A hard cut is one frame whose change towers over
its neighbourhood and persists (a flash, which returns to the old picture, does not).
A gradual transition (dissolve, fade, wipe) is found by twin comparison (Zhang et al.,
1993): a run of frames each changing a little more than their neighbourhood, whose
accumulated change from start to end is as large as a cut's, and whose middle frame is
what a transition shows there: a mix of its ends, each pixel from one end or the other,
or a flat colour (which motion is not). When motion around a transition stretches the
run, the transition is sought at either end of it: the longest window whose inner frames
are all mixes of its ends (blend_residual) and whose pixels travel straight from one end
to the other (motion wanders). Pieces of one long fade that a dip split are merged back
when the whole still mixes.
The same pass yields per-frame motion, which becomes each clip's motion score. Frames
stream through TransitionDetector, so memory stays flat whatever the video's length.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.types import ProbeInfo, Rejection, RejectReason, Transition
from tasks import media
from tasks.wrap import stage_task

STAGE = "transitions"


@dataclass(frozen=True)
class TransitionConfig:
    width: int = 48
    height: int = 27
    cut_threshold: float = 0.08  # mean |diff| of a cut, on 0..1
    cut_ratio: float = 4.0  # cut change vs. the neighbourhood's usual change
    cut_isolation: float = 2.0  # ... and vs. the frames right before and after it
    window_s: float = 1.0  # neighbourhood half-width
    flash_frames: int = 3  # a change that reverts within this many frames is a flash
    gradual_frame_ratio: float = 3.0  # per-frame change in a gradual run vs. neighbourhood
    gradual_frame_min: float = 0.003
    gradual_min_frames: int = 4
    gradual_gap_frames: int = 2  # frames of lower change a gradual run may bridge
    blend_tolerance: float = 0.4  # middle frame vs. mix of the ends, relative to the change
    gradual_max_s: float = 4.0  # longer runs of change are motion, not a transition
    fit_max_s: float = 2.5  # longest transition found at either end of a run of change
    fit_monotone: float = 0.15  # how much a fitted mix weight may step back
    fit_min_efficiency: float = 0.85  # end-to-end change / path length: motion wanders
    fit_hop_s: float = 0.1  # path length measured in hops this long (noise counts less)
    merge_gap_s: float = 0.4  # gradual pieces this close are one transition if they mix
    fast_decode: bool = True  # skip in-loop deblocking: thumbnails do not need it
    hwaccel: str | None = None  # e.g. "cuda": decode on the GPU (tasks/media.HWACCELS)
    timeout_s: float = 600.0


@dataclass(frozen=True)
class ShotAnalysis:
    """What the decode pass measured: frame times, per-frame change and the transitions."""

    times: list[float]
    motion: list[float]
    velocity: list[tuple[float, float]]  # image motion, frame widths/heights per second
    transitions: list[Transition]


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean() / 255.0)


def global_velocity(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Whole-image translation between two grey frames in pixels per frame (Lucas-Kanade).

    One 2x2 solve over all pixels: for a few moving things on a still background this is
    their motion; for a pan it is the pan. Cheap enough to run on every analysed frame.
    """
    mean = 0.5 * (prev + cur)
    gy, gx = np.gradient(mean)
    gt = cur - prev
    a = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    b = -np.array([np.sum(gx * gt), np.sum(gy * gt)])
    if np.linalg.det(a) < 1e-6 * max(1.0, float(np.trace(a)) ** 2):
        return 0.0, 0.0
    u, v = np.linalg.solve(a, b)
    return float(u), float(v)


def _between(a: np.ndarray, mid: np.ndarray, b: np.ndarray, weight: float) -> float:
    """How far the middle of a run is from what a transition would show there: a mix of
    its ends (dissolve), each pixel from one end or the other (wipe), or one flat colour
    (a fade through black or white). Motion fits none of these."""
    mix = (1 - weight) * a + weight * b
    per_pixel = np.minimum(np.abs(mid - mix), np.minimum(np.abs(mid - a), np.abs(mid - b)))
    if float(mid.std()) < 8.0:  # a flat frame: the bottom of a fade
        return 0.0
    return float(per_pixel.mean() / 255.0)


def blend_residual(frames: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """How well the inner frames of a window are explained as transition frames between its
    two ends: per pixel, a mix of the ends at one weight per frame (dissolve, fade), or one
    end or the other (wipe). Returns the worst inner frame's residual relative to the ends'
    difference, and each inner frame's mix weight (0 = first end, 1 = last)."""
    a, b = frames[0].ravel(), frames[-1].ravel()
    d = b - a
    inner = np.stack([f.ravel() for f in frames[1:-1]]) - a
    alpha = np.clip(inner @ d / max(float(d @ d), 1e-9), 0.0, 1.0)
    either_end = np.minimum(np.abs(inner), np.abs(inner - d))
    off = np.minimum(np.abs(inner - alpha[:, None] * d), either_end)
    return float(off.mean(axis=1).max() / max(float(np.abs(d).mean()), 1e-9)), alpha


class TransitionDetector:
    """Finds transitions in frames fed one at a time, keeping only a few frames in memory.

    Decisions lag the input by the neighbourhood's half-width (a frame is judged against
    the change around it, after as well as before); frames older than the flash window
    are dropped, except those of a candidate gradual run (at most `gradual_max_s` long).
    Per-frame change and times are kept for every frame: a few bytes each.
    """

    def __init__(self, fps: float, cfg: TransitionConfig) -> None:
        self.cfg = cfg
        self.w = max(2, round(cfg.window_s * (fps or 25.0)))
        self.lookahead = max(self.w, cfg.flash_frames + 1)
        self.max_run = max(cfg.gradual_min_frames, round(cfg.gradual_max_s * (fps or 25.0)))
        self.fit_hop = max(1, round(cfg.fit_hop_s * (fps or 25.0)))
        self.max_fit = max(cfg.gradual_min_frames + 2, round(cfg.fit_max_s * (fps or 25.0)))
        self.times: list[float] = []
        self.diff: list[float] = []
        self.frames: dict[int, np.ndarray] = {}
        self.transitions: list[Transition] = []
        self._next = 1  # the next frame to judge
        self._run: list[int] = []  # a candidate gradual run: consecutive frame indexes
        self._run_frames: dict[int, np.ndarray] = {}  # its frames, and the one before it
        self._run_low = 0.0
        self._run_gap = 0
        self._last_gradual: tuple[int, int, np.ndarray, np.ndarray] | None = None
        self.merge_gap = max(2, round(cfg.merge_gap_s * (fps or 25.0)))

    def push(self, t: float, frame: np.ndarray) -> None:
        i = len(self.times)
        self.times.append(t)
        self.diff.append(_distance(frame, self.frames[i - 1]) if i else 0.0)
        self.frames[i] = frame
        while self._next + self.lookahead < len(self.times):
            self._judge(self._next)
            self._next += 1
        for old in [k for k in self.frames if k < self._next - self.cfg.flash_frames - 2]:
            del self.frames[old]

    def finish(self) -> list[Transition]:
        while self._next < len(self.times):
            self._judge(self._next)
            self._next += 1
        self._close_run()
        return sorted(self.transitions, key=lambda t: t.start_frame)

    def _neighbourhood(self, i: int) -> float:
        """The usual change around frame i: a low quantile, so that a transition filling
        half the window does not raise the bar for itself."""
        around = self.diff[max(1, i - self.w) : i] + self.diff[i + 1 : i + 1 + self.w]
        return float(np.percentile(around, 25)) if around else 0.0

    def _isolated(self, i: int) -> bool:
        """A cut is one frame of change; several large changes in a row are a fast fade."""
        near = [self.diff[j] for j in (i - 1, i + 1) if 0 < j < len(self.diff)]
        return not near or self.diff[i] >= self.cfg.cut_isolation * max(near)

    def _is_flash(self, i: int, same: float) -> bool:
        """The picture before the jump at i comes back within the flash window (a flash
        starting at i), or was there just before it (a flash ending at i)."""
        span = self.cfg.flash_frames
        before = [b for b in range(i - 1 - span, i) if b in self.frames]
        after = [a for a in range(i, i + span + 1) if a in self.frames]
        return any(
            _distance(self.frames[b], self.frames[a]) < same
            for b in before
            for a in after
            if a - b > 1
        )

    def _judge(self, i: int) -> None:
        cfg, d = self.cfg, self.diff[i]
        base = self._neighbourhood(i)
        is_cut = d >= cfg.cut_threshold and d >= cfg.cut_ratio * base and self._isolated(i)
        if is_cut and not self._is_flash(i, 0.5 * d):
            self._close_run()
            self.transitions.append(
                Transition("cut", i, i, self.times[i], self.times[i], round(d, 4))
            )
            return
        if self._run and d >= self._run_low:
            self._run.extend(range(self._run[-1] + 1, i + 1))  # with any dip it bridged
            self._run_gap = 0
            for j in range(max(self._run[0], i - cfg.gradual_gap_frames), i + 1):
                if j in self.frames:
                    self._run_frames[j] = self.frames[j]
            # Keep the run's first and last `max_run` frames: a transition sits at one end
            # of a long run (a dissolve into, or out of, a moving shot).
            middle = i - self.max_run - 1
            if middle > self._run[0] + self.max_run:
                self._run_frames.pop(middle, None)
            return
        if self._run and self._run_gap < cfg.gradual_gap_frames:
            self._run_gap += 1  # a short dip (the dark middle of a fade) does not end it
            return
        self._close_run()
        low = max(cfg.gradual_frame_min, cfg.gradual_frame_ratio * base)
        if d >= low:
            self._run, self._run_low, self._run_gap = [i], low, 0
            self._run_frames = {i - 1: self.frames[i - 1], i: self.frames[i]}

    def _close_run(self) -> None:
        run, frames = self._run, self._run_frames
        self._run, self._run_frames = [], {}
        if len(run) < self.cfg.gradual_min_frames:
            return
        first, last = run[0], run[-1]
        if len(run) <= self.max_run and self._whole_run_is_transition(first, last, frames):
            self._add_gradual(first, last, frames[first - 1], frames[last])
            return
        # Motion around a transition extends the run: look for one at either end of it.
        ends = range(min(last, first - 1 + self.max_fit), first + self.cfg.gradual_min_frames, -1)
        head = next((f for e in ends if (f := self._fit(first - 1, e, frames))), None)
        if head:
            self._add_gradual(head[0], head[1], frames[head[0] - 1], frames[head[1]])
        tail_from = head[1] + 1 if head else first - 1
        starts = range(max(tail_from, last - self.max_fit), last - self.cfg.gradual_min_frames)
        tail = next((f for s in starts if (f := self._fit(s, last, frames))), None)
        if tail:
            self._add_gradual(tail[0], tail[1], frames[tail[0] - 1], frames[tail[1]])

    def _whole_run_is_transition(self, first: int, last: int, frames: dict) -> bool:
        total = _distance(frames[first - 1], frames[last])
        mid = (first - 1 + last) // 2
        weight = (mid - first + 1) / max(1, last - first + 1)
        between = _between(frames[first - 1], frames[mid], frames[last], weight)
        return total >= self.cfg.cut_threshold and between <= self.cfg.blend_tolerance * total

    def _fit(self, s: int, e: int, frames: dict) -> tuple[int, int, float] | None:
        """(first, last, change) of a transition between frames s and e, if the frames in
        between are transition frames (blend_residual), through a flat frame for fades."""
        window = [frames.get(j) for j in range(s, e + 1)]
        if any(f is None for f in window):
            return None
        total = _distance(window[0], window[-1])
        if total < self.cfg.cut_threshold:
            return None
        # A mix moves each pixel straight from one end to the other; motion (a zoom, a
        # pan) sends it back and forth. In hops of several frames, so that compression
        # noise counts less.
        hop = self.fit_hop
        hops = window[::hop] + ([window[-1]] if (len(window) - 1) % hop else [])
        path = sum(np.abs(b - a) for a, b in itertools.pairwise(hops))
        if float(np.abs(window[-1] - window[0]).mean()) < self.cfg.fit_min_efficiency * float(
            np.mean(path)
        ):
            return None
        flat = min(range(1, len(window) - 1), key=lambda k: float(window[k].std()))
        if float(window[flat].std()) < 8.0 and 1 < flat < len(window) - 2:  # via black/white
            parts = [window[: flat + 1], window[flat:]]
        else:
            parts = [window]
        alphas = []
        for part in parts:
            residual, alpha = blend_residual(part)
            steps_back = np.diff(alpha) < -self.cfg.fit_monotone
            if residual > self.cfg.blend_tolerance or np.any(steps_back):
                return None
            alphas.append(alpha)
        mixing = [k for k, a in enumerate(np.concatenate(alphas)) if 0.02 < a < 0.98]
        if len(mixing) < self.cfg.gradual_min_frames:
            return None
        return s + 1 + mixing[0], s + 1 + mixing[-1], total

    def _add_gradual(self, first: int, last: int, before: np.ndarray, end: np.ndarray) -> None:
        """Record frames first..last as a gradual transition from `before` (frame first-1)
        to `end` (frame last); a piece that continues the previous one (a long fade the
        run detection broke at a dip) is merged into it when the whole still mixes."""
        prev = self._last_gradual
        if prev and first - prev[1] <= self.merge_gap and self.transitions[-1].kind == "gradual":
            p_first, p_last, p_before, p_end = prev
            total = _distance(p_before, end)
            span = last - p_first + 1
            mids = [(p_end, (p_last - p_first + 1) / span), (before, (first - p_first) / span)]
            if total >= self.cfg.cut_threshold and all(
                _between(p_before, m, end, w) <= self.cfg.blend_tolerance * total for m, w in mids
            ):
                self.transitions.pop()
                first, before = p_first, p_before
        total = _distance(before, end)
        self._last_gradual = (first, last, before, end)
        self.transitions.append(
            Transition("gradual", first, last, self.times[first], self.times[last], round(total, 4))
        )


def analyse_shots(path: Path, probe: ProbeInfo, cfg: TransitionConfig) -> ShotAnalysis | Rejection:
    """Decode once at tiny size and find the transitions; bad media is a Rejection."""
    fps = probe.fps or 25.0
    detector = TransitionDetector(fps, cfg)
    velocity: list[tuple[float, float]] = []
    previous: np.ndarray | None = None
    try:
        frames = media.stream_frames(
            path,
            cfg.width,
            cfg.height,
            timeout_s=cfg.timeout_s,
            fast=cfg.fast_decode,
            hwaccel=cfg.hwaccel,
        )
        for f in frames:
            frame = f.rgb.astype(np.float32)
            if previous is not None:
                dt = max(f.t - detector.times[-1], 1.0 / fps)
                u, v = global_velocity(previous.mean(axis=2), frame.mean(axis=2))
                velocity.append((u / cfg.width / dt, v / cfg.height / dt))
            else:
                velocity.append((0.0, 0.0))
            detector.push(f.t, frame)
            previous = frame
    except media.MediaTimeout as e:
        return Rejection(STAGE, RejectReason.PROBE_TIMEOUT, str(e))
    except media.MediaError as e:
        if not detector.times:
            return Rejection(STAGE, RejectReason.DECODE_FAILED, f"{e}: {e.detail[-300:]}")
        # A damaged tail: keep what decoded cleanly, as players do.
    if len(detector.times) < 2:
        count = len(detector.times)
        return Rejection(STAGE, RejectReason.DECODE_FAILED, f"{count} decodable frame(s)")
    transitions = detector.finish()
    return ShotAnalysis(detector.times, detector.diff, velocity, transitions)


@stage_task("transitions")
def transitions_task(
    path: Path, probe: ProbeInfo, cfg: TransitionConfig
) -> ShotAnalysis | Rejection:
    return analyse_shots(path, probe, cfg)
