"""Find shot boundaries in one streamed, low-resolution decode pass.

Cuts: a frame whose change towers over the usual change around it (a low quantile of the
second on its calmer side, repeated frames left out, so camera motion and fast action raise
the bar), is one frame of change rather than several (a fast fade), is not a flash (the
picture from before the jump comes back within `flash_s`, half a second), and brings a
new picture: the change survives a blur (a new shot changes the broad picture; motion in
whole-pixel steps, scrolling text, noise and a breathing vignette change fine detail) or
is one fine pattern cut to an unrelated one, and the frame after is not the frame before
in other light: no one curve per channel, RGB or Y'CbCr, maps one to the other (a light
switched on, an exposure step that clips, a luma curve, a translucent flash longer than
`flash_s`), nor keeps nearly as much of the picture as a frame of the shot's own motion
does (the same, over a moving picture). Two cuts close together that each leave part of
the picture relit are the two ends of a long flash, and neither is a cut; two within a
tenth of a second are one, at the later.

Gradual transitions (dissolves, fades through black or white, wipes): `tasks.gradual`'s
network marks the frames that mix two shots, from features of the same tiny frames; a
run of marked frames that a second look at the run as a whole accepts (`tasks.run_check`)
is one transition with its full frame range, unless a whole-frame shift explains its
frames (a whip pan, faster than the motion estimate follows) or the frames either side
show one picture in other light or tint (a vignette, a panel crossing, a hue drift),
still or no less like each other than the shot's own motion leaves it over as long.
Cuts are found first and split the video into stretches: each stretch's motion is its
own baseline.

`FrameMeter` takes frames as they decode, in batches, and keeps only the last few:
what it keeps per frame is a few numbers and a 24x13 colour picture (`Measurements`,
about 1.3 kB a frame, 0.9 kB of it the picture: 140 MB for an hour at 30 fps).
Deciding is a plain function of those. The same pass yields each clip's motion score
and motion track.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import pairwise, product
from pathlib import Path
from typing import NamedTuple

import numpy as np

from storage.types import ProbeInfo, Rejection, RejectReason, ShotAnalysis, Transition
from tasks import gradual, media, run_check

STAGE = "transitions"
BATCH = 64  # frames measured together (numpy work per batch, not per frame)


@dataclass(frozen=True)
class TransitionConfig:
    cut_threshold: float = 0.08  # mean |diff| of a cut, on 0..1
    # ... or as little as this when the new picture keeps less than `cut_faint_relit` of
    # the old (a cut between two shots alike in colour and layout). On the looked-at
    # independent seeds 91-124, the changes between the two that stand out, are broad and
    # are no flash: 7 true cuts with relit 0.42 at most, 35 in-shot changes (tickers,
    # panels, exposure steps, vignettes) with 0.57 at least. 0.03 at first; 0.02 raised
    # cut F1 on seeds 91-112 / 113-124 / 125-136 from 0.955 / 0.949 / 0.951 to 0.957 /
    # 0.952 / 0.954 with the same precision (faint jump cuts, and through a black frame:
    # `after_flat_frame`); 0.01 found one cut more
    cut_floor: float = 0.02
    cut_faint_relit: float = 0.5
    # ... and only when the change reaches this share of the picture's regions: a small
    # object that jumps (a sprite wrapping round the frame) changes one or two of them
    cut_faint_spread: float = 0.5
    cut_ratio: float = 4.0  # cut change vs. the neighbourhood's usual change
    cut_isolation: float = 2.0  # ... and vs. the frames right before and after it
    repeat_change: float = 0.004  # less change than this: a repeated frame (codec noise)
    window_s: float = 1.0  # neighbourhood half-width
    flash_s: float = 0.5  # a change that reverts within this long is a flash
    # ... to less than this share of the cut's change: in-shot flashes and fills came back
    # to at most 0.34 on the looked-at sets, true cuts went down to 0.44 (0.5 until then)
    cut_revert: float = 0.4
    # ... unless the jump brings a picture no curve maps the old one to (relit above 0, so
    # not a flat card, and under this). On the looked-at independent seeds 91-124, of 819
    # candidates the flash test rightly turned down, 287 were flat cards and the rest had
    # 0.083 relit or more (a fill keeps the picture it hides until it flattens it); 9 of
    # the 17 true cuts it turned down (short shots next to look-alikes) had 0.002-0.023
    flash_unrelated: float = 0.05
    cut_kept_relit: float = 0.15  # a cut this far from relit is a new picture even in a run
    cut_coarse: float = 0.3  # share of a cut's change left after a 5x5 blur, at least
    # ... unless no curve maps one side to the other (relit under this) and the grey
    # column and row means move by this many levels on 0..255 at least: a cut between two
    # fine patterns (`fine_new_pattern`)
    cut_fine_relit: float = 0.05
    cut_fine_profile: float = 2.0
    # a jump to or from a near-flat frame whose faint layout stays put: a card relit
    # (`relit_card`)
    cut_card_match: float = 0.8
    cut_relit: float = 0.86  # a monotone map of one side explaining more of the other: relit
    # ... or, for a jump partly relit (`long_flash_relit` and more), this share of what
    # one frame of the shot's own motion keeps (`relit_like_motion`)
    cut_motion_relit: float = 0.9
    long_flash_s: float = 1.5  # two cuts this close, each partly relit: a long flash
    long_flash_relit: float = 0.45  # ... each with at least this much of the picture relit
    # ... or each a jump to or from a flat card, the picture after it this close to the one
    # before it (profile change, as a share of the first jump's): the card was a flash
    flat_flash_return: float = 0.1
    # Two cuts closer than this are one, at the later: two or three frames between two
    # shots (an edit's black frames, a flash frame) are no shot of their own
    cut_min_gap_s: float = 0.1
    gradual_on: float = 0.5  # network probability that starts a gradual transition
    gradual_off: float = 0.3  # ... and that keeps one going (hysteresis)
    gradual_min_s: float = 0.2  # shorter marked runs are noise
    # ... and so are runs the network is this unsure of. 0.65 from 2026-12-01, before the
    # run check (`gradual_run_check`) judged each run; since the check, runs from 0.55 to
    # 0.65 are better left to it: gradual F1 0.849 -> 0.852 on the looked-at independent
    # seeds 91-146 (672 videos; recall 0.866 -> 0.874, precision 0.833 -> 0.831), the
    # wide set 901 0.937 -> 0.950, the benchmark's sets unchanged; flat from 0.45 to 0.55
    gradual_min_score: float = 0.55
    gradual_merge_s: float = 0.12  # runs this close are one transition
    gradual_run_check: float = 0.5  # tasks.run_check's least probability for a run (0: off)
    gradual_pan: float = 0.2  # a run whose frames a shift leaves this little of (median): a pan
    gradual_same_layout: float = 0.9  # a run with this like a picture on both sides: in-shot
    # ... or this like a colour picture (`same_picture`): gradual F1 0.852 -> 0.866 on the
    # looked-at seeds 91-146 (flat from 0.85 to 0.95), 0.843 -> 0.859 on fresh 187-196
    gradual_same_picture: float = 0.9
    # ... or this like it and as like as the shot's own motion leaves it over as many
    # frames (`moves_like_the_shot`): gradual F1 0.859 -> 0.866 on the looked-at 197-206
    gradual_motion_match: float = 0.8
    fast_decode: bool = True  # skip deblocking on B-frames only (media.input_args)
    decode_parts: int = 2  # decoders side by side on parts of a long video (tasks.split_decode)
    split_min_s: float = 20.0  # ... each part at least this long; 1 part below twice this
    split_tail_s: float = 1.0  # ... each part decoded this far past its end, to check the join
    part_threads: int = 0  # ... each part's decoder threads (0: the CPUs shared among parts)
    hwaccel: str | None = None  # e.g. "cuda": decode on the GPU (tasks/media.HWACCELS)
    timeout_s: float = 600.0


class CutEvidence(NamedTuple):
    """What the frames around a possible cut say, measured while the meter holds them."""

    revert: float  # least change from a frame before the jump to one after (a flash returns)
    coarse: float  # share of the change a 5x5 blur leaves: a new shot changes the broad picture
    relit: float  # how well one side is the other in other light (a monotone map per channel,
    # in RGB or in Y'CbCr: `relit_share`)
    spread: float  # share of the picture's regions the change reaches (`spread_share`)
    # relit across one frame of the shot's own motion, the lower of the pair before the
    # jump and the pair after it; measured only where a jump is partly relit
    # (`long_flash_relit` to `cut_relit`), 1 elsewhere (`FrameMeter._motion_relit`)
    motion_relit: float = 1.0


@dataclass(frozen=True)
class Measurements:
    """What the decode pass measured: enough to decide the transitions."""

    fps: float
    stride: int  # the gradual network sees every stride-th frame
    times: list[float]
    change: list[float]  # mean |frame - previous frame| on 0..1: the motion signal
    # ... of that change, what survives a 5x5 blur (`broad_change`): a checkerboard's first
    # step right after a cut is no second frame of a fast fade. Every frame's, so a
    # possible cut and the frames beside it are weighed alike (until 2026-12-07 only
    # possible cuts had it, and a busy neighbour under `cut_threshold` counted whole)
    broad: list[float]
    velocity: list[tuple[float, float]]
    evidence: dict[int, CutEvidence]  # each possible cut (`possible_cuts`)
    features: np.ndarray  # the gradual network's features, a row per network frame
    profiles: np.ndarray  # each frame's grey column and row means, (n, w + h) float16
    pictures: np.ndarray  # each frame in colour at half the analysis size, (n, 13, 24, 3) uint8


def global_velocity(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole-image translation between grey frames in pixels per frame (Lucas-Kanade),
    for a batch: prev and cur are (n, h, w) on 0..255. Returns (n, 2) as (u, v), and the
    change that translation leaves unexplained (mean, on 0..1).

    One 2x2 solve per frame over all its pixels: for a few moving things on a still
    background this is their motion; for a pan it is the pan, and a pan's change is
    almost all explained, a dissolve's hardly at all.
    """
    mean = 0.5 * (prev + cur)
    gy, gx = np.gradient(mean, axis=(1, 2))
    gt = cur - prev
    sxx, sxy, syy = (np.sum(a * b, axis=(1, 2)) for a, b in ((gx, gx), (gx, gy), (gy, gy)))
    bx, by = -np.sum(gx * gt, axis=(1, 2)), -np.sum(gy * gt, axis=(1, 2))
    det = sxx * syy - sxy * sxy
    ok = det >= 1e-6 * np.maximum(1.0, sxx + syy) ** 2
    safe = np.where(ok, det, 1.0)
    u = np.where(ok, (syy * bx - sxy * by) / safe, 0.0)
    v = np.where(ok, (sxx * by - sxy * bx) / safe, 0.0)
    left = gt + gx * u[:, None, None] + gy * v[:, None, None]
    return np.stack([u, v], axis=1), np.abs(left).mean(axis=(1, 2)) / 255.0


class FrameMeter:
    """Measures frames fed one at a time, keeping only a few of them.

    Frames wait in a batch; each batch is measured with a flash's length of frames
    before it (change, flash test) and after it (the flash test looks ahead), then
    dropped.
    """

    def __init__(self, fps: float, cfg: TransitionConfig, first_index: int = 0) -> None:
        """first_index: the whole video's index of the first frame pushed (a part of it
        decoded on its own), so that its network frames fall where one pass's would."""
        self.cfg = cfg
        self.first_index = first_index
        self.fps = fps or 25.0
        self.stride = gradual.network_stride(self.fps)
        self.flash = max(1, round(cfg.flash_s * self.fps))  # frames a flash may last
        self.times: list[float] = []
        self.change: list[float] = []
        self.broad: list[float] = []
        self.velocity: list[tuple[float, float]] = []
        self.profiles: list[np.ndarray] = []
        self.pictures: list[np.ndarray] = []
        self.evidence: dict[int, CutEvidence] = {}
        self.features = gradual.GradualFeatures()
        self._frames: list[np.ndarray] = []  # frames not yet measured, and some context
        self._first = 0  # index of self._frames[0]
        self._measured = 0  # frames measured so far

    @property
    def frames_held(self) -> int:
        return len(self._frames)

    def push(self, t: float, frame: np.ndarray) -> None:
        """The next decoded frame: presentation time, H x W x 3 uint8."""
        self.times.append(t)
        self._frames.append(frame)
        if len(self.times) - self._measured >= BATCH + self.flash:
            self._measure(len(self.times) - self.flash)

    def finish(self) -> Measurements:
        self._measure(len(self.times))
        return Measurements(
            self.fps,
            self.stride,
            self.times,
            self.change,
            self.broad,
            self.velocity,
            self.evidence,
            self.features.matrix(),
            np.concatenate(self.profiles or [np.zeros((0, sum(gradual.FRAME_SIZE)), np.float16)]),
            np.concatenate(self.pictures or [np.zeros((0, *PICTURE_SHAPE), np.uint8)]),
        )

    def _measure(self, end: int) -> None:
        """Measure frames [self._measured, end): change, velocity, flash test, features."""
        start = self._measured
        if end <= start:
            return
        raw = np.stack(self._frames)  # frames self._first ...
        held = raw.astype(np.int16)  # integer differences: exact, and cheaper than floats
        grey = raw.sum(axis=3, dtype=np.float32) / 3.0
        lo, hi = start - self._first, end - self._first
        prev = np.maximum(np.arange(lo, hi) - 1, 0)  # the first frame is its own previous
        diff = held[lo:hi] - held[prev]
        change = _mean_abs(diff)
        self.change.extend(change.tolist())
        self.broad.extend(broad_change(diff).tolist())
        times = np.asarray(self.times[self._first : end])
        dt = np.maximum(times[lo:hi] - times[prev], 1.0 / self.fps)
        if start == 0:
            dt[0] = np.inf  # the first frame has no motion
        uv, unexplained = global_velocity(grey[prev], grey[lo:hi])
        vel = uv / (np.array(gradual.FRAME_SIZE) * dt[:, None])
        self.velocity.extend((float(u), float(v)) for u, v in vel)
        self.profiles.append(grey_profiles(grey[lo:hi]))
        self.pictures.append(small_pictures(raw[lo:hi]))
        self._cut_evidence(held, start, change)
        net = [k for k in range(hi - lo) if (self.first_index + start + k) % self.stride == 0]
        if net:
            self.features.push(raw[lo:hi][net], unexplained[net])
        self._measured = end
        drop = max(0, end - (self.flash + 2) - self._first)  # keep context for the next
        del self._frames[:drop]
        self._first += drop

    def _cut_evidence(self, held: np.ndarray, start: int, change: np.ndarray) -> None:
        """For frames whose change could be a cut: whether the old picture comes back
        within a flash's length (the least change between a frame before the jump and one
        after it), how much of the change is broad, and how the two sides correlate."""
        for k in self._possible_cuts(held, start, change):
            i = start + int(k)
            a, b = held[i - 1 - self._first], held[i - self._first]
            before = np.arange(max(self._first, i - 1 - self.flash), i)
            after = np.arange(i, min(len(self.times), i + self.flash + 1))
            pairs = after[None, :] - before[:, None] > 1  # not the jump itself
            revert = float("inf")
            if pairs.any():
                x, y = held[after - self._first], held[before - self._first]
                revert = float(_mean_abs(y[:, None] - x[None, :])[pairs].min())
            coarse = self.broad[i] / max(float(change[k]), 1e-9)
            spread = spread_share(a, b)
            relit = relit_share(a, b)
            motion = 1.0
            if self.cfg.long_flash_relit <= relit < self.cfg.cut_relit:
                motion = self._motion_relit(held, i)
            self.evidence[i] = CutEvidence(revert, float(coarse), relit, spread, motion)

    def _motion_relit(self, held: np.ndarray, i: int) -> float:
        """`relit_share` across frames i-2 -> i-1 and i -> i+1, the lower (1 where
        neither pair is there): how much of the picture one frame of the shot's own
        motion keeps under one curve per channel, on each side of the jump at i."""
        pairs = [(k - 1, k) for k in (i - 1, i + 1) if self._first <= k - 1 and k < len(self.times)]
        shares = [relit_share(held[a - self._first], held[b - self._first]) for a, b in pairs]
        return min(shares, default=1.0)

    def _possible_cuts(self, held: np.ndarray, start: int, change: np.ndarray) -> np.ndarray:
        """Offsets in the batch of the frames worth the cut tests: every change of at least
        `cut_threshold`, and a fainter one down to `cut_floor` only when it is isolated
        (`find_cuts`' own test, here so that motion, whose every frame changes about as
        much, costs no evidence)."""
        strong = change >= self.cfg.cut_threshold
        faint = np.flatnonzero(~strong & (change >= self.cfg.cut_floor))
        keep = [k for k in faint if self._isolated(held, start + int(k))]
        return np.sort(np.concatenate([np.flatnonzero(strong), np.asarray(keep, dtype=int)]))

    def _isolated(self, held: np.ndarray, i: int) -> bool:
        """`is_isolated` for frame i while the meter holds it and the next frame, whose
        broad change is not measured yet at the end of a batch."""
        near = [self.broad[i - 1]] if i > 1 else []
        if i + 1 < len(self.broad):
            near.append(self.broad[i + 1])
        elif i + 1 < len(self.times):
            step = held[i + 1 - self._first] - held[i - self._first]
            near.append(float(broad_change(step[None])[0]))
        return is_isolated(self.broad[i], near, self.cfg)


def grey_profiles(grey: np.ndarray) -> np.ndarray:
    """Grey frames (n, h, w) -> (n, w + h): each frame's means down every column, then
    along every row; kept for every frame (75 numbers at 48x27), so `pan_left` can look
    at any marked run once the network has marked it."""
    return np.concatenate([grey.mean(axis=1), grey.mean(axis=2)], axis=1).astype(np.float16)


PICTURE_SHAPE = (gradual.FRAME_SIZE[1] // 2, gradual.FRAME_SIZE[0] // 2, 3)


def small_pictures(frames: np.ndarray) -> np.ndarray:
    """Colour frames (n, 27, 48, 3) -> (n, 13, 24, 3): the means of 2x2 cells (the last
    row dropped), kept for every frame (936 bytes, six times the profiles), so
    `same_picture` can compare the two sides of any run the network marks."""
    h, w, _ = PICTURE_SHAPE
    cells = frames[:, : 2 * h, : 2 * w].reshape(len(frames), h, 2, w, 2, 3)
    return np.rint(cells.mean(axis=(2, 4), dtype=np.float32)).astype(np.uint8)


def pan_left(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Per frame, from `grey_profiles` of it (cur) and of the frame before it (prev): the share
    of the change of the column and of the row profile that the best shift of the
    previous frame's leaves unexplained, the lower of the two; 1 where the profiles
    hardly change.

    A whip pan moves the picture a fifth of its width a frame at 48x27, beyond what
    `global_velocity`'s single Lucas-Kanade step follows, so to the network it is change
    that no motion explains, as in a dissolve. A search over every shift up to half the
    frame follows it (under a fifth left on whip pans, against 0.4 and more for the
    transitions found on the looked-at independent sets); a transition changes the
    profiles' shape, not their place."""
    left = np.ones(len(cur))
    w = gradual.FRAME_SIZE[0]
    for part in (slice(0, w), slice(w, None)):
        p, c = prev[:, part].astype(np.float32), cur[:, part].astype(np.float32)
        n = p.shape[1]
        still = np.abs(c - p).mean(axis=1)
        least = still.copy()
        for d in (*range(1, n // 2 + 1), *range(-1, -(n // 2) - 1, -1)):
            moved = np.abs(c[:, max(0, d) : n + min(0, d)] - p[:, max(0, -d) : n - max(0, d)])
            least = np.minimum(least, moved.mean(axis=1))
        share = np.where(still >= 1.0, least / np.maximum(still, 1e-9), 1.0)  # 1 grey level
        left = np.minimum(left, share)
    return left


def broad_change(diff: np.ndarray) -> np.ndarray:
    """Per frame, from (n, h, w, 3) differences of 8-bit frames: the mean |difference| left
    after a 5x5 blur, on 0..1. A new shot changes the broad picture; stepped motion, a
    ticker or noise change fine detail, which the blur averages away."""
    return _mean_abs(box_sum(diff, 5)) / 25.0


def box_sum(x: np.ndarray, k: int) -> np.ndarray:
    """Sums over every k x k window of (..., h, w, c) arrays (integral image; 'valid')."""
    c = np.cumsum(np.cumsum(x.astype(np.int32), axis=-3), axis=-2)
    c = np.pad(c, [(0, 0)] * (c.ndim - 3) + [(1, 0), (1, 0), (0, 0)])
    return c[..., k:, k:, :] - c[..., :-k, k:, :] - c[..., k:, :-k, :] + c[..., :-k, :-k, :]


SPREAD_CELLS = (3, 4)  # rows, columns of the regions `spread_share` counts


def spread_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of a grid of regions (`SPREAD_CELLS`) whose mean |b - a| is at least a quarter
    of the whole frame's: a new shot changes the picture throughout, an object that moves
    or jumps changes the regions it leaves and enters."""
    diff = np.abs(b.astype(np.int16) - a).mean(axis=2)
    rows, cols = SPREAD_CELLS
    h, w = diff.shape[0] // rows, diff.shape[1] // cols
    cells = diff[: h * rows, : w * cols].reshape(rows, h, cols, w).mean(axis=(1, 3))
    return float((cells >= 0.25 * diff.mean()).mean())


FLAT = 4.0  # a channel's mean squared spread under this (2 levels): no picture to map


def relit_share(a: np.ndarray, b: np.ndarray) -> float:
    """How much of one frame's picture a non-decreasing map of the other's values, one per
    channel, explains: the better of the map in RGB (`rgb_share`) and in Y'CbCr
    (`ycbcr_share`); 0..1.

    A light switched on, an exposure step, a luma curve or a translucent fill maps every
    value through one curve per channel, clipping included (many values to 255: a map
    from the old frame, not back); a new shot is no such map, nor is a cut between hues of
    one layout (a red bar turning green raises one channel where another falls). It does
    what a correlation does for a linear light change and keeps holding when the light
    clips. 0 when either frame is flat (a plain card has no picture to keep)."""
    if any(x.reshape(-1, x.shape[2]).var(axis=0).mean() <= FLAT for x in (a, b)):
        return 0.0
    return max(rgb_share(a, b), ycbcr_share(a, b))


def rgb_share(a: np.ndarray, b: np.ndarray) -> float:
    """The share one curve per RGB channel explains, pooled over the channels, in the
    better of the two directions."""
    best = 0.0
    for x, y in ((a, b), (b, a)):
        fits = _channel_fits(x, y)
        best = max(best, 1.0 - sum(r for r, _ in fits) / sum(t for _, t in fits))
    return best


def ycbcr_share(a: np.ndarray, b: np.ndarray) -> float:
    """How much of one frame's picture one non-decreasing map per channel of luma and
    chroma explains: the worst of the channels that vary, in the better direction.

    A strong coloured light crushes one RGB channel (blue under a yellow wash), so the
    picture under it survives in the other two and in luma, which draws on all three; a
    curve per RGB channel cannot borrow across channels, and the crushed one's noise pulls
    the pooled share under `cut_relit`. On the looked-at independent sets (91-106) such
    fills explained 0.40-0.84 of the picture in RGB and 0.88-1.00 in Y'CbCr. A cut to the
    same layout in other hues keeps Y and turns the chroma, which no curve per channel
    follows: the worst channel tells them apart. 0 when every channel is flat."""
    ya, yb = _ycbcr(a), _ycbcr(b)
    best = 0.0
    for x, y in ((ya, yb), (yb, ya)):
        pixels = y.shape[0] * y.shape[1]
        shares = [1.0 - r / t for r, t in _channel_fits(x, y) if t > FLAT * pixels]
        best = max(best, min(shares, default=0.0))
    return best


def _channel_fits(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """Per channel, `_monotone_fit` of y's values on x's: (residual, total)."""
    return [_monotone_fit(x[..., c].ravel(), y[..., c].ravel()) for c in range(x.shape[2])]


def _ycbcr(rgb: np.ndarray) -> np.ndarray:
    """8-bit RGB -> 8-bit Y'CbCr (BT.601, full range), as integers for `_monotone_fit`."""
    r, g, b = (rgb[..., k].astype(np.int32) for k in range(3))
    y = (77 * r + 150 * g + 29 * b) >> 8
    cb = ((-43 * r - 85 * g + 128 * b) >> 8) + 128
    cr = ((128 * r - 107 * g - 21 * b) >> 8) + 128
    return np.clip(np.stack([y, cb, cr], axis=-1), 0, 255)


def _monotone_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The residual and total sums of squares of 8-bit y about the best non-decreasing
    function of 8-bit x (isotonic regression on the 256 values' means), from bin sums."""
    count = np.bincount(x, minlength=256).astype(np.float64)
    sums = np.bincount(x, y.astype(np.float64), minlength=256)
    seen = count > 0
    fit = _pool_adjacent_violators(sums[seen] / count[seen], count[seen])
    y2 = float(np.dot(y.astype(np.float64), y))
    left = y2 - float(np.sum(2.0 * fit * sums[seen] - count[seen] * fit * fit))
    total = y2 - float(y.sum(dtype=np.float64)) ** 2 / y.size
    return max(left, 0.0), total


def _pool_adjacent_violators(means: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted non-decreasing sequence closest to `means` (at most 256 of them)."""
    vals: list[float] = []
    ws: list[float] = []
    sizes: list[int] = []
    for m, w in zip(means.tolist(), weights.tolist(), strict=True):
        vals.append(m)
        ws.append(w)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w2 = ws[-2] + ws[-1]
            vals[-2] = (vals[-2] * ws[-2] + vals[-1] * ws[-1]) / w2
            ws[-2], sizes[-2] = w2, sizes[-2] + sizes[-1]
            del vals[-1], ws[-1], sizes[-1]
    return np.repeat(vals, sizes)


def _mean_abs(diff: np.ndarray) -> np.ndarray:
    """Mean |difference| of 8-bit frames on 0..1, over all but the leading axes (exact
    integer sums: cheaper than a float mean)."""
    lead = diff.ndim - 3
    total = np.abs(diff).sum(axis=tuple(range(lead, diff.ndim)), dtype=np.int32)
    return total / (255.0 * np.prod(diff.shape[lead:]))


def find_cuts(m: Measurements, cfg: TransitionConfig) -> list[int]:
    """Frames where a new shot starts at once (the first frame of the new shot)."""
    d = m.change
    w = window_frames(m, cfg)
    cuts = []
    for i, e in sorted(m.evidence.items()):
        if i == 0 or i == len(d) - 1:  # the last frame alone is no shot: nothing after it
            continue
        base = calmer_side(d[max(1, i - w) : i], d[i + 1 : i + 1 + w], cfg.repeat_change)
        near = [m.broad[j] for j in (i - 1, i + 1) if 0 < j < len(d)]
        isolated = is_isolated(m.broad[i], near, cfg)
        faint = d[i] < cfg.cut_threshold
        relit_at_most = cfg.cut_faint_relit if faint else cfg.cut_relit
        broad = e.coarse >= cfg.cut_coarse or fine_new_pattern(i, e, m, cfg)
        new_picture = broad and e.relit < relit_at_most and not relit_like_motion(e, cfg)
        new_picture &= not relit_card(i, e, m, cfg)
        new_picture &= not faint or e.spread >= cfg.cut_faint_spread
        stands_out = d[i] >= cfg.cut_ratio * base and isolated
        flash = e.revert < cfg.cut_revert * d[i] and not 0.0 < e.relit < cfg.flash_unrelated
        if (stands_out and not flash and new_picture) or after_flat_frame(i, base, m, cfg):
            cuts.append(i)
    return one_cut_per_gap(without_long_flashes(cuts, m, cfg), m.fps, cfg)


def one_cut_per_gap(cuts: list[int], fps: float, cfg: TransitionConfig) -> list[int]:
    """Cuts less each one followed within `cut_min_gap_s` by another: the frames between
    are a card or a flash frame between two shots, and the new shot starts at the later
    cut. On the looked-at independent seeds 91-146, four such pairs 2-3 frames apart each
    held one true cut (a two-frame black card at an edit, a frame of the old shot's end
    relit); the generator's shortest shot is 0.3 s."""
    gap = cfg.cut_min_gap_s * fps
    after = [*cuts[1:], math.inf]
    return [c for k, c in enumerate(cuts) if after[k] - c >= gap]


def relit_like_motion(e: CutEvidence, cfg: TransitionConfig) -> bool:
    """Whether a jump keeps, under one curve per channel, nearly as much of the picture
    as a frame of the shot's own motion does (`cut_motion_relit` of `motion_relit`): the
    same picture in other light, however much it moves.

    `cut_relit` asks for a share that a still picture relit reaches; over a moving one,
    the frames either side differ by the motion as well, and a fill, a strobe or an
    exposure step there kept 0.6-0.85 while consecutive frames of the shot kept 0.6-1.0.
    A new shot keeps far less than its neighbours' motion does: on the looked-at
    independent seeds 91-146 (672 videos), of the jumps the other tests took for cuts,
    the true ones kept under 0.9 of it save two (0.90, and 0.98: a cut into a shot that
    jumps again on its next frame) and 37 false ones 0.9 or more. False cuts there fell
    from 55 to 41 (the rest were taken by marked runs), cut F1 0.956 -> 0.961 (precision
    0.964 -> 0.973, recall unchanged). Only a jump partly relit can be judged so: outside
    `long_flash_relit` to `cut_relit` the meter leaves `motion_relit` at 1, which no relit
    under `cut_relit` reaches 0.9 of."""
    return e.relit >= cfg.cut_motion_relit * e.motion_relit


def relit_card(i: int, e: CutEvidence, m: Measurements, cfg: TransitionConfig) -> bool:
    """Whether a jump from or to a near-flat picture (relit 0: too little spread for a
    curve to map) keeps that picture's faint layout where it was: a card relit, not a
    new one. The colour pictures either side, each channel less its mean, correlate at
    least `cut_card_match`.

    A title card's text averages to a level or two on the analysis frame, so the relit
    test calls the card flat and any light step on it a cut. On the looked-at
    independent seeds 91-196 (1,272 videos), of the cuts found where relit was 0, the
    false ones (light steps and fills on title cards) matched 0.89-0.99 for 8 of 18,
    and the 87 true ones 0.47 at most."""
    if e.relit > 0.0 or cfg.cut_card_match <= 0 or not 0 < i < len(m.pictures):
        return False
    return frames_match(m, i - 1, i) >= cfg.cut_card_match


def fine_new_pattern(i: int, e: CutEvidence, m: Measurements, cfg: TransitionConfig) -> bool:
    """Whether a jump that is mostly fine detail (under `cut_coarse` after the blur) is
    still a new picture: one fine pattern cut to another (checkerboards, rings, noise).

    The blur test is there for fine patterns that step in place or move by whole pixels;
    those keep part of their picture under a curve (relit 0.06 and more on the looked-at
    independent seeds 91-146) and their columns' and rows' means, since every column
    still averages the same cells (the grey profiles move by 0.9 levels at most where
    relit is under 0.05). A cut to an unrelated pattern keeps nothing (relit under 0.05)
    and moves the means by 5 levels and more (the six such cuts there)."""
    if e.relit >= cfg.cut_fine_relit or not 0 < i < len(m.profiles):
        return False
    return profile_change(m, i - 1, i) >= cfg.cut_fine_profile


def is_isolated(own: float, near: list[float], cfg: TransitionConfig) -> bool:
    """Whether a frame's broad change (own) is `cut_isolation` times that of the frames
    beside it (near): a cut changes one frame, motion every frame."""
    return not near or own >= cfg.cut_isolation * max(near)


def after_flat_frame(i: int, base: float, m: Measurements, cfg: TransitionConfig) -> bool:
    """Whether frame i starts a new shot after a single flat frame (a black frame between
    two shots, left by an edit): the jumps into and out of the flat frame are each as big as
    the other, so neither is isolated, and each is bigger than the change from the old
    picture to the new, so the flash test sees a return. Judged as one change from the
    frame before the flat one to the one after it: a cut when that is a cut's change and
    broad. A one-frame flash within a shot brings the old picture back: no such change.
    The change across may be as faint as `cut_floor` (a jump cut between look-alikes with
    an edit's black frame between): on the looked-at independent seeds 91-136, one-frame
    flat flashes whose change across stands out changed 0.003 at most, and those that
    changed more (0.019-0.036, strobes over moving shots) did not stand out; true cuts
    changed 0.023 (two) and 0.052 and up (lost at 0.023-0.057 until 2026-12-07, when
    0.08 was the least)."""
    into, e, d = m.evidence.get(i - 1), m.evidence[i], m.change
    if into is None or into.relit > 0.0 or e.relit > 0.0:  # relit 0: a flat side
        return False
    if min(d[i - 1], d[i]) < cfg.cut_threshold:  # faint possible cuts: only to a new picture
        return False
    bridged = e.revert  # the least change from before the flat frame to after
    calm = [d[j] for j in (i - 2, i + 1) if 0 < j < len(d)]
    return (
        bridged >= max(cfg.cut_floor, cfg.cut_ratio * base)
        and e.coarse >= cfg.cut_coarse
        and min(d[i - 1], d[i]) >= cfg.cut_isolation * max(calm, default=0.0)
    )


def without_long_flashes(cuts: list[int], m: Measurements, cfg: TransitionConfig) -> list[int]:
    """Cuts less those that are the two ends of a flash longer than `flash_s` (whose
    return the revert test does not see): two cuts within `long_flash_s` where either

    - at each, one curve per channel still explains `long_flash_relit` of one side from
      the other. A translucent fill or a strobe keeps the picture under it, only
      flattened: too noisy for the relit test's `cut_relit` once the fill is heavy, but
      far from a new shot's near zero (on the looked-at independent sets, seeds 31-82 and
      91-93, the lower end of 15 such pairs 0.34-0.81). A short shot between two others
      is a new picture at one end at least: the lower end was at most 0.13 for 91 of the
      92 pairs of true cuts there, 0.31 for one (a vignette); but 0.42 for a short
      perturbed copy in the training catalogue's wide set 901, hence 0.45 (0.5 until a
      0.8 s fill on seed 93 left 0.49);
    - or the frames between are a flat card (relit 0 at both jumps: no picture to map)
      and the picture after it is the one before it (`flat_flash_return`). A fill heavy
      enough to flatten the frame leaves nothing to relight, but the picture it hid
      comes back. On the looked-at independent seeds 91-124, five pairs of false cuts
      around a heavy fill came back to 0.006-0.04 of the jump; the four other pairs with
      a flat card between came back to 0.22 at the least (two true cuts around a black
      frame), hence 0.1."""
    span = cfg.long_flash_s * m.fps
    flashing: set[int] = set()
    for i, j in pairwise(cuts):
        if j - i > span:
            continue
        relit = min(m.evidence[i].relit, m.evidence[j].relit)
        if relit >= cfg.long_flash_relit or flat_card_returns(i, j, m, cfg):
            flashing |= {i, j}
    return [c for c in cuts if c not in flashing]


def flat_card_returns(i: int, j: int, m: Measurements, cfg: TransitionConfig) -> bool:
    """Whether cuts i < j enclose a flat card after which the picture before i comes
    back: grey profiles of frames i-1 and j nearer than `flat_flash_return` times the
    profiles' jump at i."""
    if m.evidence[i].relit != 0.0 or m.evidence[j].relit != 0.0 or len(m.profiles) <= j:
        return False
    jump = profile_change(m, i - 1, i)
    return profile_change(m, i - 1, j) < cfg.flat_flash_return * jump


def profile_change(m: Measurements, a: int, b: int) -> float:
    """Mean |difference| of frames a's and b's grey column and row means, in grey levels
    on 0..255: how far the broad layout of light moved between them."""
    return float(np.abs(m.profiles[b].astype(np.float32) - m.profiles[a]).mean())


def calmer_side(before: list[float], after: list[float], repeat: float) -> float:
    """The usual change of the calmer of the two sides of a possible cut (`usual_change`
    of each). A cut often joins a fast shot to a calm one, and its jump need only stand
    out from the calm side: measured over both, a whip pan or a strobe on one side set a
    bar the cut's change did not reach. The onset of fast motion inside a shot also has a
    calm side, but its next frames change as much as it does: the isolation test turns
    it down. A side shorter than the other by half (the video's first or last frames)
    shows too little of its motion to judge alone: then both count together."""
    if 2 * min(len(before), len(after)) < max(len(before), len(after)):
        return usual_change(before + after, repeat)
    return min(usual_change(before, repeat), usual_change(after, repeat))


def usual_change(around: list[float], repeat: float) -> float:
    """The neighbourhood's usual change: a low quantile of it. Frames that repeat the one
    before (animation drawn on twos or threes, a stuttering source, a frame-rate
    conversion) are left out when there is motion between them: otherwise the quantile
    is the repeats' zero, and every new drawing towers over it like a cut."""
    moving = [x for x in around if x >= repeat]
    if len(moving) >= max(4, len(around) // 4):
        return float(np.percentile(moving, 25))
    return float(np.percentile(around, 25)) if around else 0.0


def network_starts(cuts: list[int], stride: int) -> list[int]:
    """The network frames where a cut begins a shot."""
    return [-(-c // stride) for c in cuts]


def gradual_runs(
    probs: np.ndarray,
    m: Measurements,
    cfg: TransitionConfig,
    check: run_check.RunCheck | None = None,
    cuts: list[int] | None = None,
) -> list[tuple[int, int, float]]:
    """Runs of frames the network marks that pass the check on the run as a whole:
    (first frame, last frame, mean probability)."""
    runs = marked_gradual(probs, m, cfg)
    if runs and cfg.gradual_run_check > 0:
        judged = (check or run_check.load_check()).probability(run_rows(probs, m, runs))
        runs = [g for g, p in zip(runs, judged, strict=True) if p >= cfg.gradual_run_check]
    return [
        g
        for g in in_video_frames(runs, m)
        if not is_pan(g[0], g[1], m, cfg) and not within_one_shot(g[0], g[1], m, cfg, cuts or [])
    ]


def within_one_shot(
    a: int, b: int, m: Measurements, cfg: TransitionConfig, cuts: list[int]
) -> bool:
    """Whether the frames either side of the marked run a..b show one shot: its layout
    (`same_layout`), its picture (`same_picture`), or a picture no less alike than the
    shot's own motion leaves it (`moves_like_the_shot`). Not when the run passes through
    a flat frame (`fades_through_flat`): a fade out to a colour and in again is a
    transition even between two takes of one picture. On the looked-at independent
    seeds 197-206 the exception found three transitions more (two fades and a wipe, net)
    and let one false run through (a fill heavy enough to flatten the frame): gradual F1
    0.866 -> 0.870; in the benchmark's seed 17 one more fade (0.972 -> 0.986)."""
    alike = (
        same_layout(a, b, m, cfg)
        or same_picture(a, b, m, cfg)
        or moves_like_the_shot(a, b, m, cfg, cuts)
    )
    return alike and not fades_through_flat(a, b, m)


def is_pan(a: int, b: int, m: Measurements, cfg: TransitionConfig) -> bool:
    """Whether a marked run a..b (video frames) is the picture moving fast, not changing:
    a whole-frame shift explains most of most of its frames' change (`pan_left`)."""
    first = max(a, 1)  # each frame against the one before it
    if b < first or len(m.profiles) <= b:
        return False
    left = pan_left(m.profiles[first - 1 : b], m.profiles[first : b + 1])
    return float(np.median(left)) <= cfg.gradual_pan


LAYOUT_SHIFT = 6  # profile samples (of 48 and 27) the picture may move across a run
LAYOUT_LEVELS = 1.0  # grey levels a profile's steps must spread over to show a layout
LAYOUT_GAP = 3  # frames outside a run its two sides are read at


def same_layout(a: int, b: int, m: Measurements, cfg: TransitionConfig) -> bool:
    """Whether the picture after the marked run a..b (video frames) has the layout of the
    one before it: the steps of both grey profiles, column and row, correlate at least
    `gradual_same_layout` (the best of small shifts). A breathing vignette, a light step,
    a hue drift or a focus pull changes the light or the sharpness of one picture and
    keeps where its edges are; a transition ends on another shot. Flat profiles say nothing.
    On the looked-at sets (independent seeds 91-93, 95, 96; the benchmark and wide sets)
    0.9 dropped 5 of 40 false runs, vignettes mostly, and one of 304 found ones."""
    if cfg.gradual_same_layout <= 0 or len(m.profiles) == 0:
        return False
    before, after = run_sides(m.profiles, a, b, LAYOUT_GAP)
    w = gradual.FRAME_SIZE[0]
    return all(
        profile_match(before[part], after[part]) >= cfg.gradual_same_layout
        for part in (slice(0, w), slice(w, None))
    )


PICTURE_GAP = 8  # frames outside a run its two sides are read at
PICTURE_SHIFT = 2  # cells (of 24 and 13) the picture may move across a run


def same_picture(a: int, b: int, m: Measurements, cfg: TransitionConfig) -> bool:
    """Whether the frames either side of the marked run a..b (video frames) show one
    picture: their colour pictures, each channel less its mean, correlate at least
    `gradual_same_picture` (the best of small shifts). A vignette, a panel crossing, a
    hue drift or an exposure step leaves the picture where it was, in other light or
    tint; a transition ends on another shot. The grey profiles of `same_layout` say
    nothing of most busy pictures (their column means are flat); the picture does."""
    if cfg.gradual_same_picture <= 0 or len(m.pictures) == 0:
        return False
    before, after = side_frames(a, b, len(m.pictures), PICTURE_GAP)
    return frames_match(m, before, after) >= cfg.gradual_same_picture


def moves_like_the_shot(
    a: int, b: int, m: Measurements, cfg: TransitionConfig, cuts: list[int]
) -> bool:
    """Whether the marked run a..b changes the picture no more than the shot's own motion
    does over as many frames: the colour pictures either side of it (`same_picture`'s)
    match at least `gradual_motion_match`, and at least as well as two frames as far
    apart inside the shot before the run or the one after it (no cut between them).

    `same_picture` asks for a match that a still picture keeps; over a moving one, the
    sides differ by the motion as well: the false runs this test drops (a hue drift, a
    focus pull, a panel crossing, the shot's own content) matched 0.8-0.9 across while
    the shot itself moved as much. A transition ends on another picture, which matches
    its sides far less than the shot's own motion does, save between look-alike shots
    (two soft gradients, two stretches of one plasma).
    On the looked-at independent seeds 197-206 (120 videos), 0.8 dropped 6 false runs
    and no found transition; 0.4 dropped 15 false runs and 7 found ones (wipes between
    look-alikes), for the same gradual F1 (0.859 -> 0.866), so the narrower one. It
    took one fade through white in the wide set 901, between two stretches of one
    panning picture (0.81 across, the pan 0.45): hence `within_one_shot`'s exception."""
    if cfg.gradual_motion_match <= 0 or len(m.pictures) == 0:
        return False
    n = len(m.pictures)
    x, y = side_frames(a, b, n, PICTURE_GAP)
    across = frames_match(m, x, y)
    if across < cfg.gradual_motion_match:
        return False
    span = y - x
    inside = [
        frames_match(m, p, q)
        for p, q in ((x - span, x), (y, y + span))
        if p >= 0 and q < n and not any(p < c <= q for c in cuts)
    ]
    inside = [match for match in inside if match > -1.0]  # -1: a flat frame says nothing
    return bool(inside) and across >= max(inside)


FADE_CONTRAST = 0.1  # a frame with under this share of its run's sides' contrast: flat


def fades_through_flat(a: int, b: int, m: Measurements) -> bool:
    """Whether the run a..b passes through a frame nearly flat: under `FADE_CONTRAST` of
    the colour contrast of the flatter of its sides (`PICTURE_GAP` frames out)."""

    def contrast(k: int) -> float:
        return float(m.pictures[k].reshape(-1, 3).std(axis=0).mean())

    sides = min(contrast(k) for k in side_frames(a, b, len(m.pictures), PICTURE_GAP))
    return min(contrast(k) for k in range(a, b + 1)) < FADE_CONTRAST * sides


def frames_match(m: Measurements, p: int, q: int) -> float:
    """`picture_match` of frames p and q."""
    return picture_match(m.pictures[p].astype(np.float32), m.pictures[q].astype(np.float32))


def side_frames(a: int, b: int, n: int, gap: int) -> tuple[int, int]:
    """The frames `gap` before the run a..b and `gap` after it, clamped to the n frames."""
    return max(0, a - gap), min(n - 1, b + gap)


def run_sides(per_frame: np.ndarray, a: int, b: int, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """What `per_frame` (profiles) holds at the run a..b's `side_frames`, as floats."""
    x, y = side_frames(a, b, len(per_frame), gap)
    return per_frame[x].astype(np.float32), per_frame[y].astype(np.float32)


def overlaps(
    p: np.ndarray, q: np.ndarray, shift: int, axes: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The parts of p and q that overlap when q moves by every offset up to `shift`
    along each of their first `axes` axes (a profile: 1; a picture: 2)."""
    for offsets in product(range(-shift, shift + 1), repeat=axes):
        n = p.shape[:axes]
        yield (
            p[tuple(slice(max(0, s), k + min(0, s)) for s, k in zip(offsets, n, strict=True))],
            q[tuple(slice(max(0, -s), k - max(0, s)) for s, k in zip(offsets, n, strict=True))],
        )


def picture_match(p: np.ndarray, q: np.ndarray) -> float:
    """The best correlation of two (h, w, 3) pictures, each channel less its mean, over
    shifts up to `PICTURE_SHIFT` cells; -1 where either is flat."""
    best = -1.0
    for x, y in overlaps(p, q, PICTURE_SHIFT, axes=2):
        x = x - x.mean(axis=(0, 1))
        y = y - y.mean(axis=(0, 1))
        norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
        if norm > 1e-6:
            best = max(best, float((x * y).sum()) / norm)
    return best


def profile_match(p: np.ndarray, q: np.ndarray) -> float:
    """The best correlation of two profiles' steps (first differences) over shifts up to
    `LAYOUT_SHIFT`; -1 when either hardly steps (`LAYOUT_LEVELS`)."""
    dp, dq = np.diff(p), np.diff(q)
    if min(dp.std(), dq.std()) < LAYOUT_LEVELS:
        return -1.0
    best = -1.0
    for x, y in overlaps(dp, dq, LAYOUT_SHIFT, axes=1):
        if x.std() > 0 and y.std() > 0:
            best = max(best, float(np.corrcoef(x, y)[0, 1]))
    return best


def in_video_frames(
    runs: list[tuple[int, int, float]], m: Measurements
) -> list[tuple[int, int, float]]:
    """Runs in network frames as inclusive ranges of video frames."""
    s, last = m.stride, len(m.times) - 1
    return [(a * s, min(last, b * s + s - 1), p) for a, b, p in runs]


def marked_gradual(
    probs: np.ndarray, m: Measurements, cfg: TransitionConfig
) -> list[tuple[int, int, float]]:
    """The runs the network marks, long and sure enough, before the run check: (first,
    last network frame, mean probability). The check's training reads the same runs."""
    rate = m.fps / m.stride
    runs = merge_runs(
        marked_runs(probs, cfg.gradual_on, cfg.gradual_off),
        max(1, round(cfg.gradual_merge_s * rate)),
    )
    shortest = max(2, round(cfg.gradual_min_s * rate))
    scored = [(a, b, float(probs[a : b + 1].mean())) for a, b in runs]
    return [(a, b, p) for a, b, p in scored if b - a + 1 >= shortest and p >= cfg.gradual_min_score]


def run_rows(probs: np.ndarray, m: Measurements, runs: list[tuple[int, int, float]]) -> np.ndarray:
    """`run_check.run_features` of each run in network frames, a row each."""
    rate = m.fps / m.stride
    return np.stack([run_check.run_features(m.features, probs, a, b, rate) for a, b, _ in runs])


def resolve(
    cuts: list[int], runs: list[tuple[int, int, float]], m: Measurements, cfg: TransitionConfig
) -> list[Transition]:
    """Cuts and gradual runs as transitions, in order.

    A marked run touching a cut is the cut's echo in the network's context, unless it
    goes on both sides of it: then the "cut" was the steep part of a transition (a fade
    through white can jump most of the way in one frame). Not when the cut `towers` over
    a run that goes on only a little past it: that is a cut at the edge of a marked
    in-shot change (a vignette breathing up to the cut, a hue drift) or of a transition
    next to it; the few frames across the cut are its echo, the long side stays marked.
    Nor when the cut brings a picture `unrelated` to the old one: a step of a dissolve or
    a fade keeps much of the frame before it (relit 0.53-0.84 on the looked-at sets), a
    new shot inside a run marked over a flash keeps none (0.08).
    """
    kept = []
    all_cuts = frozenset(cuts)
    for c in cuts:
        touching = [g for g in runs if g[0] - 1 <= c <= g[1] + 1]
        runs = [g for g in runs if g not in touching]
        if not touching:
            kept.append(c)
            continue
        a, b = min(g[0] for g in touching), max(g[1] for g in touching)
        score = float(np.mean([g[2] for g in touching]))
        across = a < c - 1 and b > c
        if across and not towers(c, a, b, m, cfg, all_cuts) and not unrelated(c, m, cfg):
            runs.append((a, b, score))  # the steep part of a gradual transition
            continue
        kept.append(c)
        longer = (a, c - 1) if c - a > b - c else (c + 1, b)
        if across and longer[1] - longer[0] + 1 >= shortest_run(m, cfg):
            runs.append((*longer, score))  # the short side was the echo
    t, d = m.times, m.change
    out = [Transition("cut", c, c, t[c], t[c], round(d[c], 4)) for c in kept]
    out += [Transition("gradual", a, b, t[a], t[b], round(p, 4)) for a, b, p in runs]
    return sorted(out, key=lambda x: x.start_frame)


def unrelated(c: int, m: Measurements, cfg: TransitionConfig) -> bool:
    """Whether cut c brings a picture no curve maps the old one to (relit share under
    `cut_kept_relit`): not a step of a dissolve or a fade, whose frames keep much of the
    one before. 0 means a flat side (the white of a fade through white): no evidence."""
    e = m.evidence.get(c)
    return e is not None and 0.0 < e.relit < cfg.cut_kept_relit


def towers(
    c: int, a: int, b: int, m: Measurements, cfg: TransitionConfig, cuts: AbstractSet[int]
) -> bool:
    """Whether cut c, inside the marked run a..b, is a cut at the edge of a marked in-shot
    change rather than the steep part of a transition: the run goes on for less than a
    gradual transition's shortest length on one side and the cut's change is `cut_ratio`
    times that of every frame within `window_s` of it in the run that is not a cut (a
    long run can hold a flash further on, or reach the next cut)."""
    if min(c - a, b - c) >= shortest_run(m, cfg):
        return False
    w = window_frames(m, cfg)
    near = [m.change[j] for j in range(max(a, c - w), min(b, c + w) + 1) if j not in cuts]
    return m.change[c] >= cfg.cut_ratio * max(near, default=0.0)


def window_frames(m: Measurements, cfg: TransitionConfig) -> int:
    """`window_s`, the neighbourhood a cut is judged against, in video frames."""
    return max(2, round(cfg.window_s * m.fps))


def shortest_run(m: Measurements, cfg: TransitionConfig) -> int:
    """`gradual_min_s` in video frames."""
    return max(2, round(cfg.gradual_min_s * m.fps))


def find_transitions(
    m: Measurements, cfg: TransitionConfig, model: gradual.TCN | None = None
) -> list[Transition]:
    cuts, probs = cuts_and_gradual_probability(m, cfg, model)
    return resolve(cuts, gradual_runs(probs, m, cfg, cuts=cuts), m, cfg)


def cuts_and_gradual_probability(
    m: Measurements, cfg: TransitionConfig, model: gradual.TCN | None = None
) -> tuple[list[int], np.ndarray]:
    """The cuts, and the network's per-frame gradual probability with them as shot starts."""
    cuts = find_cuts(m, cfg)
    return cuts, gradual.gradual_probability(m.features, network_starts(cuts, m.stride), model)


def marked_runs(probs: np.ndarray, on: float, off: float) -> list[tuple[int, int]]:
    """Inclusive index runs that reach `on` somewhere and stay at `off` or above."""
    runs: list[tuple[int, int]] = []
    above = probs >= off
    i, n = 0, len(probs)
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and above[j + 1]:
            j += 1
        if probs[i : j + 1].max() >= on:
            runs.append((i, j))
        i = j + 1
    return runs


def merge_runs(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Runs separated by at most `gap` indexes become one."""
    merged: list[tuple[int, int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] - 1 <= gap:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


ROWS_PER_ROW = 8  # decoded rows the analysis frame's every row averages, at least


def row_step(height: int) -> int:
    """Every how many decoded rows the analysis decode reads (a power of two): as few as
    keep `ROWS_PER_ROW` rows under each of the 27 analysis rows, so each is still the
    mean of a tall band and not a sampled line (1080p: every 4th row, 270 rows; 720p and
    480p: every 2nd; 360p and below: all). The frames move by 0.001-0.006 mean at 48x27
    and a frame's change by under 1% (median); a 1080p decode takes 9% less CPU time."""
    step = 1
    while height // (2 * step) >= ROWS_PER_ROW * gradual.FRAME_SIZE[1]:
        step *= 2
    return step


def analysis_frames(
    path: Path,
    probe: ProbeInfo,
    cfg: TransitionConfig,
    start_s: float | None = None,
    duration_s: float | None = None,
    threads: int = 0,
) -> Iterator[media.Frame]:
    """The analysis decode, for one pass and for each part of a split one alike: the
    network's frame size, the row step for the video's height, the decode settings."""
    return media.stream_frames(
        path,
        *gradual.FRAME_SIZE,
        timeout_s=cfg.timeout_s,
        start_s=start_s,
        duration_s=duration_s,
        fast=cfg.fast_decode,
        hwaccel=cfg.hwaccel,
        stream_index=probe.stream_index,
        row_step=row_step(probe.display_size[1]),
        threads=threads,
    )


def measure_video(path: Path, probe: ProbeInfo, cfg: TransitionConfig) -> Measurements | Rejection:
    """Decode once at the network's frame size and measure every frame; bad media is a
    Rejection. The pipeline and the network's training both measure through here. A long
    video is decoded as parts side by side when they join exactly (`tasks.split_decode`)."""
    from tasks import split_decode  # it builds on this module's meter

    try:
        split = split_decode.measure_split(path, probe, cfg)
    except media.MediaTimeout as e:
        return Rejection(STAGE, RejectReason.DECODE_TIMEOUT, str(e))
    if split is not None:
        return split
    meter = FrameMeter(probe.fps, cfg)
    try:
        for f in analysis_frames(path, probe, cfg):
            meter.push(f.t, f.rgb)
    except media.MediaTimeout as e:
        return Rejection(STAGE, RejectReason.DECODE_TIMEOUT, str(e))
    except media.MediaError as e:
        if not meter.times:
            return Rejection(STAGE, RejectReason.DECODE_FAILED, f"{e}: {e.detail[-300:]}")
        # A damaged tail: keep what decoded cleanly, as players do.
    if len(meter.times) < 2:
        count = len(meter.times)
        return Rejection(STAGE, RejectReason.DECODE_FAILED, f"{count} decodable frame(s)")
    return meter.finish()


def analyse_shots(path: Path, probe: ProbeInfo, cfg: TransitionConfig) -> ShotAnalysis | Rejection:
    """Decode once at tiny size and find the transitions; bad media is a Rejection."""
    m = measure_video(path, probe, cfg)
    if isinstance(m, Rejection):
        return m
    return ShotAnalysis(m.times, m.change, m.velocity, find_transitions(m, cfg))
