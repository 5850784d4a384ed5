"""Measure a long video as a few overlapping parts decoded side by side, then join them.

Why: a plain `ffmpeg -i X -f null -` keeps about 1.6 of 2 cores busy on 1080p H.264 (its
frame threads wait on each other and on the main thread), and the analysis decode does the
same work plus a scale. Two decoders on two halves of the video fill the cores, so the
analysis finishes before a plain decode of the whole video would, while every frame is
still decoded and measured.

Every measurement is local in time: a frame's change, motion and profiles look one frame
back, the gradual features at most `LAGS[-1]` network frames back, the cut evidence a
flash's length either way. So a part that starts decoding `lead_seconds` before its first
kept frame and goes on `split_tail_s` past its last measures its kept frames exactly as one
pass over the whole video does. Parts are joined where their frames meet, and only after the frames
both decoded agree: same times, and the same change and profiles, bit for bit. If they do
not (a container that seeks inexactly, a variable-rate video whose network frames fall
differently), the caller measures in one pass instead: never a join that could be wrong.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.types import ProbeInfo
from tasks import gradual, media
from tasks.transitions import FrameMeter, Measurements, TransitionConfig, analysis_frames

# Containers with an index, where ffmpeg's input seek lands where it is asked to.
SEEKABLE = ("mov", "mp4", "matroska", "webm", "avi")


@dataclass(frozen=True)
class Part:
    """One part's span: frames from `keep_from` (the previous part keeps those before)."""

    decode_from: float  # where its decode starts (seconds; 0 for the first part)
    keep_from: float
    decode_until: float | None  # None: to the end


@dataclass
class Measured:
    """A part's measurements, and where its network frames fell."""

    m: Measurements
    first_index: int  # the whole video's index its first frame was taken to have


def plan_parts(path: Path, probe: ProbeInfo, cfg: TransitionConfig) -> list[Part]:
    """Equal parts of at least `split_min_s` each, at most `decode_parts`; one part (no split)
    for short videos and for containers that do not seek by an index.

    A part's decode starts at a keyframe: ffmpeg seeks to the keyframe before the time it
    is given and decodes from there, so a part that starts `lead` after a keyframe decodes
    only the context it needs (x264 puts keyframes up to 10 s apart; a part placed
    without looking would decode up to that much twice)."""
    count = min(cfg.decode_parts, int(probe.duration_s // max(cfg.split_min_s, 1e-9)))
    if count < 2 or not any(f in SEEKABLE for f in probe.format_name.split(",")):
        return [Part(0.0, 0.0, None)]
    fps = probe.fps or 25.0
    lead, step = lead_seconds(fps, cfg), probe.duration_s / count
    starts = [0.0]
    for k in range(1, count):
        wanted = k * step - lead  # where the decode would start for an even split
        near = media.keyframe_times(
            path,
            wanted - cfg.split_min_s / 2,
            wanted + cfg.split_min_s / 2,
            probe.stream_index,
            cfg.timeout_s,
        )
        key = min(near, key=lambda t: abs(t - wanted), default=wanted)
        starts.append(max(starts[-1] + cfg.split_min_s / 2, key + 0.5 / fps))
    parts = []
    for k, start in enumerate(starts):
        keep = start + lead if k else 0.0
        until = starts[k + 1] + lead + cfg.split_tail_s if k + 1 < len(starts) else None
        parts.append(Part(start, keep, until))
    return parts


def lead_seconds(fps: float, cfg: TransitionConfig) -> float:
    """How long before its first kept frame a part starts decoding: the frames that frame's
    measurements look back on, with half a second to spare."""
    return context_frames(fps, cfg) / (fps or 25.0) + 0.5


def context_frames(fps: float, cfg: TransitionConfig) -> int:
    """Frames a frame's measurements look back on: the gradual features reach 16 network
    frames back, the flash test a flash's length and one more."""
    fps = fps or 25.0
    back = max(max(gradual.LAGS), max(gradual.BLEND_WINDOWS)) * gradual.network_stride(fps)
    return max(back, round(cfg.flash_s * fps) + 2)


def measure_parts(
    path: Path, probe: ProbeInfo, cfg: TransitionConfig, parts: list[Part]
) -> list[Measured]:
    """Decode and measure every part at once, a thread each (the decoders are processes;
    the threads only read pipes and do numpy work). Raises what a part's decode raised."""
    results: list[Measured | None] = [None] * len(parts)
    errors: list[Exception] = []
    failed = threading.Event()  # one part failed: the others stop, one pass decides
    threads = cfg.part_threads or max(1, usable_cpus() // len(parts))

    def run(k: int, part: Part) -> None:
        try:
            results[k] = measure_part(path, probe, cfg, part, threads, failed)
        except Exception as e:  # handed to the caller's thread
            errors.append(e)
            failed.set()

    workers = [threading.Thread(target=run, args=(k, p)) for k, p in enumerate(parts)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def measure_part(
    path: Path,
    probe: ProbeInfo,
    cfg: TransitionConfig,
    part: Part,
    threads: int,
    failed: threading.Event,
) -> Measured:
    span = None if part.decode_until is None else part.decode_until - part.decode_from + 1.0
    frames = analysis_frames(path, probe, cfg, part.decode_from or None, span, threads)
    meter: FrameMeter | None = None
    first = 0
    try:
        for f in frames:
            if failed.is_set():
                raise media.MediaError("another part of the video failed to decode")
            if part.decode_until is not None and f.t >= part.decode_until:
                break
            if meter is None:  # its network frames fall where the whole video's would
                first = round(f.t * (probe.fps or 25.0)) if part.decode_from else 0
                meter = FrameMeter(probe.fps, cfg, first_index=first)
            meter.push(f.t, f.rgb)
    finally:
        frames.close()  # stops the decoder when the part ends before the video does
    if meter is None or len(meter.times) < 2:
        raise media.MediaError(f"part from {part.decode_from:.3f} s decoded no frames")
    return Measured(meter.finish(), first)


def join_parts(
    parts: list[Part], measured: list[Measured], fps: float, cfg: TransitionConfig
) -> Measurements | None:
    """One `Measurements` as one pass would have made it, or None where two parts do not
    agree on the frames they both decoded past a boundary."""
    if len(measured) == 1:
        return measured[0].m
    pieces: list[tuple[Measured, int, int]] = []  # part, first and last+1 local frame kept
    offset, lo = 0, 0  # the whole video's index of the current part's frame `lo`
    tolerance = 0.25 / (fps or 25.0)
    for k in range(len(measured) - 1):
        here, there = measured[k].m, measured[k + 1].m
        boundary = parts[k + 1].keep_from
        hi = next((i for i, t in enumerate(here.times) if t >= boundary), None)
        if hi is None or hi <= lo:
            return None
        # The same frame in the next part: nearest in time, then every frame after it that
        # both decoded must agree.
        q = int(np.argmin(np.abs(np.asarray(there.times) - here.times[hi])))
        if q < context_frames(fps, cfg) or not agree(here, hi, there, q, tolerance):
            return None
        pieces.append((measured[k], lo, hi))
        offset += hi - lo
        if (offset - q - measured[k + 1].first_index) % here.stride:
            return None  # network frames would fall out of step with one pass
        lo = q
    pieces.append((measured[-1], lo, len(measured[-1].m.times)))
    return concatenate(pieces)


def agree(a: Measurements, i: int, b: Measurements, j: int, tolerance: float) -> bool:
    """Whether a's frames from i and b's from j are the same frames, measured alike: every
    frame both hold (the part before went on `split_tail_s` past the boundary)."""
    n = min(len(a.times) - i, len(b.times) - j)
    if n < 2:
        return False
    ta, tb = np.asarray(a.times[i : i + n]), np.asarray(b.times[j : j + n])
    return (
        bool(np.all(np.abs(ta - tb) <= tolerance))
        and a.change[i : i + n] == b.change[j : j + n]
        and np.array_equal(a.profiles[i : i + n], b.profiles[j : j + n])
    )


def concatenate(pieces: list[tuple[Measured, int, int]]) -> Measurements:
    """The kept frames of each part, in order, as one video's measurements."""
    first = pieces[0][0].m
    times: list[float] = []
    change: list[float] = []
    broad: list[float] = []
    velocity: list[tuple[float, float]] = []
    evidence = {}
    features, profiles, pictures = [], [], []
    for part, lo, hi in pieces:
        m, start = part.m, len(times)
        times += m.times[lo:hi]
        change += m.change[lo:hi]
        broad += m.broad[lo:hi]
        velocity += m.velocity[lo:hi]
        profiles.append(m.profiles[lo:hi])
        pictures.append(m.pictures[lo:hi])
        evidence |= {start + i - lo: e for i, e in m.evidence.items() if lo <= i < hi}
        net = [k for k in range(len(m.times)) if (part.first_index + k) % m.stride == 0]
        rows = [r for r, k in enumerate(net) if lo <= k < hi]
        features.append(m.features[rows])
    return Measurements(
        first.fps,
        first.stride,
        times,
        change,
        broad,
        velocity,
        evidence,
        np.concatenate(features),
        np.concatenate(profiles),
        np.concatenate(pictures),
    )


def measure_split(path: Path, probe: ProbeInfo, cfg: TransitionConfig) -> Measurements | None:
    """The video's measurements from parts decoded side by side, or None where it is not
    split (short, or a container without an index) or its parts do not join: then one
    pass measures it. A part's timeout is the video's; a part that fails to decode leaves
    the verdict to one pass (a damaged tail keeps what decoded before it)."""
    parts = plan_parts(path, probe, cfg)
    if len(parts) < 2:
        return None
    try:
        measured = measure_parts(path, probe, cfg, parts)
    except media.MediaError:
        return None
    return join_parts(parts, measured, probe.fps, cfg)
