"""Gradual transitions (dissolves, fades, wipes): per-frame features and a small temporal
convolutional network that marks the frames a transition mixes.

Why a learned model: in a dissolve between moving shots, no single signal stands out.
The per-frame pixel change of a pan can be larger than a dissolve's, histograms drift in
a zoom, and the middle frame is not a mix of the end frames when both shots move. Each
signal below is weak alone; a network with a second of context on either side weighs
them together, as TransNetV2 does with pixels (at a sliver of its cost: the features are
measured on 48x27 frames, the network has 17k weights and runs in numpy).

The features of frame t, on frames resampled to about `MODEL_RATE` per second:
- pixel change |f_t - f_{t-k}| and colour-histogram change for lags k = 1, 2, 4, 8, 16
  (histograms ignore where things are, so motion barely moves them; a transition does);
- the change since the previous frame that a global translation does not explain (a
  pan's is small, a dissolve's is not);
- the frame's brightness and contrast (a fade through black or white flattens it);
- for windows of 4, 8 and 16 frames, how far the middle frame is from a mix of the
  window's ends, each pixel from one end or the other (a dissolve or a wipe) relative
  to the ends' difference.
Before the network, each change feature is also taken relative to its running median
within the stretch between two cuts, so a shot's own level of motion is the baseline.
The network's second output marks cuts; it is trained but not used for decisions (the
hand-written cut test is exact), because learning where cuts are teaches it that a cut's
echo in its context is not a transition.

The weights come from `benchmarks/train_gradual.py`, trained on synthetic videos whose
sources and transitions are drawn from a wider catalogue than the benchmark's
(`benchmarks/synthetic.py`). They ship in `tasks/models/gradual_tcn.npz`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

FRAME_SIZE = (48, 27)  # width, height: the analysis decodes to this; the network learnt on it
MODEL_RATE = 30.0  # frames per second the network sees; faster videos are strided
LAGS = (1, 2, 4, 8, 16)
BLEND_WINDOWS = (4, 8, 16)
HIST_BINS = 8
_HIST_SHIFT = 8 - int(np.log2(HIST_BINS))  # uint8 value -> bin
MEDIAN_HALF = 25  # frames either side for the running baseline
_MEDIAN_CHUNK = 4096  # frames per sliding-window median (bounds its memory)
_BACK = max(LAGS)  # frames kept from one batch for the next
_UNEXPLAINED = 2 * len(LAGS)  # column of the change a translation leaves unexplained
N_FEATURES = _UNEXPLAINED + 3 + len(BLEND_WINDOWS)
WEIGHTS = Path(__file__).parent / "models" / "gradual_tcn.npz"


def network_stride(fps: float) -> int:
    """Every how many video frames the network sees one (about `MODEL_RATE` a second)."""
    return max(1, round(fps / MODEL_RATE))


def histograms(frames: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) uint8 -> (n, 3 * HIST_BINS): per-channel histograms, each summing to 1."""
    n = len(frames)
    q = (frames >> _HIST_SHIFT).reshape(n, -1, 3).astype(np.int64)
    q += np.arange(3) * HIST_BINS + np.arange(n)[:, None, None] * 3 * HIST_BINS
    counts = np.bincount(q.ravel(), minlength=n * 3 * HIST_BINS).astype(np.float32)
    return counts.reshape(n, 3 * HIST_BINS) / q.shape[1]


class GradualFeatures:
    """Features of consecutive frames pushed in batches, from the last 16 frames only
    (bounded memory). Near the start of a video a lag reaches back to the first frame."""

    def __init__(self) -> None:
        self._tail: tuple[np.ndarray, np.ndarray] | None = None  # pixels, histograms
        self._seen = 0
        self._chunks: list[np.ndarray] = []

    def push(self, frames: np.ndarray, unexplained: np.ndarray) -> None:
        """frames: (n, h, w, 3) uint8, the next n frames; unexplained: (n,) each frame's
        change from the one before that a global translation does not explain."""
        n = len(frames)
        if n == 0:
            return
        pix = frames.reshape(n, -1).astype(np.int16)  # integer arithmetic: half the work
        hist = histograms(frames)
        seen = self._seen
        if self._tail is None:  # the first frame stands in for the frames before it
            self._tail = (np.repeat(pix[:1], _BACK, axis=0), np.repeat(hist[:1], _BACK, axis=0))
        pix = np.concatenate([self._tail[0], pix])
        hist = np.concatenate([self._tail[1], hist])
        now = slice(_BACK, _BACK + n)
        rows = np.empty((n, N_FEATURES), dtype=np.float32)
        for j, k in enumerate(LAGS):
            then = slice(_BACK - k, _BACK - k + n)
            rows[:, 2 * j] = _mean(np.abs(pix[now] - pix[then])) / 255.0
            rows[:, 2 * j + 1] = 0.5 * np.abs(hist[now] - hist[then]).sum(axis=1)
        rows[:, _UNEXPLAINED] = unexplained
        mean = _mean(pix[now])
        rows[:, _UNEXPLAINED + 1] = mean / 255.0
        square = np.einsum("ij,ij->i", pix[now], pix[now], dtype=np.int64) / pix.shape[1]
        rows[:, _UNEXPLAINED + 2] = np.sqrt(np.maximum(square - mean * mean, 0.0)) / 255.0
        for j, k in enumerate(BLEND_WINDOWS):
            a, m, b = (
                pix[_BACK - k : _BACK - k + n],
                pix[_BACK - k // 2 : _BACK - k // 2 + n],
                pix[now],
            )
            # In twice the units, so the mix of the ends stays an integer.
            off = np.minimum(np.abs(2 * m - a - b), 2 * np.minimum(np.abs(m - a), np.abs(m - b)))
            spread = np.maximum(_mean(np.abs(a - b)), 1e-3 * 255.0)
            blend = np.minimum(3.0, _mean(off) / (2.0 * spread))
            blend[: max(0, k - seen)] = 0.0  # the window reaches before the first frame
            rows[:, _UNEXPLAINED + 3 + j] = blend
        self._chunks.append(rows)
        self._tail = (pix[-_BACK:], hist[-_BACK:])
        self._seen = seen + n

    def matrix(self) -> np.ndarray:
        if not self._chunks:
            return np.zeros((0, N_FEATURES), np.float32)
        return np.concatenate(self._chunks)


def _mean(x: np.ndarray) -> np.ndarray:
    """Row means of small integers, summed exactly in int32 (faster than a float mean)."""
    return x.sum(axis=1, dtype=np.int32) / x.shape[1]


def running_median(x: np.ndarray, half: int, starts: Sequence[int] = ()) -> np.ndarray:
    """Median of x[i-half : i+half+1] along axis 0, within each stretch between `starts`
    (a shot's baseline is its own, not its neighbour's across a cut); ends repeat."""
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.empty_like(x)
    bounds = [0, *sorted(i for i in set(starts) if 0 < i < len(x)), len(x)]
    for a, b in itertools.pairwise(bounds):
        padded = np.pad(x[a:b], ((half, half), (0, 0)), mode="edge")
        for s in range(a, b, _MEDIAN_CHUNK):
            e = min(b, s + _MEDIAN_CHUNK)
            win = sliding_window_view(padded[s - a : e - a + 2 * half], 2 * half + 1, axis=0)
            out[s:e] = np.median(win, axis=-1)
    return out


def network_input(features: np.ndarray, starts: Sequence[int] = ()) -> np.ndarray:
    """(channels, frames): log change, log change over its running median within each
    shot (`starts`: network frames where a cut begins a shot), and the other features."""
    n_change = _UNEXPLAINED + 1
    log = np.log(features[:, :n_change] + 1e-3)
    relative = log - running_median(log, MEDIAN_HALF, starts)
    rest = features[:, n_change:].copy()
    rest[:, :2] *= 4.0  # brightness and contrast on about the scale of the others
    return np.concatenate([log, relative, rest], axis=1).T.astype(np.float32)


@dataclass(frozen=True)
class TCN:
    """A stack of 1-D convolutions: one plain layer, residual dilated layers, a 1x1 head.

    weights: w0 (h, c, k0), b0; for each dilated layer i: w{i} (h, h, 3), b{i}; head wh
    (2, h, 1), bh; dilations in `dilations`. Output channels: cut logit, gradual logit.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray, int], ...]
    head: tuple[np.ndarray, np.ndarray]

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> TCN:
        z = np.load(path)
        dil = [int(d) for d in z["dilations"]]
        layers = [(z["w0"], z["b0"], 1)]
        layers += [(z[f"w{i + 1}"], z[f"b{i + 1}"], d) for i, d in enumerate(dil)]
        return cls(tuple(layers), (z["wh"], z["bh"]))

    @property
    def reach(self) -> int:
        """How many frames either side of a frame its output depends on."""
        return sum(d * (w.shape[2] - 1) // 2 for w, _, d in self.layers)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (channels, frames) -> (2, frames) probabilities."""
        for i, (w, b, d) in enumerate(self.layers):
            y = np.maximum(conv1d(x, w, b, d), 0.0)
            x = y if i == 0 else x + y
        logits = conv1d(x, *self.head, 1)
        return 1.0 / (1.0 + np.exp(-logits))


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """'Same' 1-D convolution (cross-correlation, as torch's Conv1d) with zero padding."""
    out_c, _, k = w.shape
    pad = dilation * (k - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad)))
    n = x.shape[1]
    y = np.broadcast_to(b[:, None], (out_c, n)).astype(np.float32).copy()
    for j in range(k):
        y += w[:, :, j] @ xp[:, j * dilation : j * dilation + n]
    return y


@lru_cache(maxsize=1)
def load_model() -> TCN:
    return TCN.load()


def gradual_probability(
    features: np.ndarray,
    starts: Sequence[int] = (),
    model: TCN | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """Per-frame probability that the frame is inside a gradual transition.

    In chunks with enough context on either side (the running median's half-width plus
    the network's reach) that every probability is what the whole video at once would
    give, so memory stays flat however long the video is.
    """
    model = model or load_model()
    n = len(features)
    out = np.zeros(n, dtype=np.float32)
    context = MEDIAN_HALF + model.reach
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        a, b = max(0, s - context), min(n, e + context)
        local = [i - a for i in starts if a < i < b]
        out[s:e] = model(network_input(features[a:b], local))[1, s - a : e - a]
    return out
