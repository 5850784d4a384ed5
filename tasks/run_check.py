"""A second look at each run of frames the gradual network marks, as a whole.

The network judges frame by frame, with a second of context: inside a breathing
vignette, a hue drift, a strobe or a panel crossing the frame, some frames look like a
dissolve's. A run as a whole says more: how long it is, how sure the network was at its
peak, whether the change inside it stands out from the second around it, whether the
picture's contrast dips (a fade or a dissolve between busy shots), and how different
the picture after the run is from the one before it (a transition brings a new one; a
vignette breathes back). A logistic model weighs these; it is trained on the training
generator's videos with in-shot events that the network never saw
(`benchmarks/train_run_check.py`) and ships in `tasks/models/gradual_run_check.npz`.
It learnt to correct the network's usual mistakes, so it leans on the network's own
scores: it is no judge of a run the network would not mark (a steady stretch given a
high score passes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tasks import gradual

WEIGHTS = Path(__file__).parent / "models" / "gradual_run_check.npz"
_BRIGHTNESS = gradual.N_FEATURES - len(gradual.BLEND_WINDOWS) - 2  # column of the mean
_CONTRAST = _BRIGHTNESS + 1
_EPS = 1e-3


def run_features(
    features: np.ndarray, probs: np.ndarray, a: int, b: int, rate: float
) -> np.ndarray:
    """What a marked run a..b (inclusive network frames, `rate` per second) looks like as
    a whole, from the network's features and probabilities: one row."""
    n = len(features)
    r = max(1, round(rate))
    inside = features[a : b + 1]
    context = np.r_[max(0, a - r) : a, b + 1 : min(n, b + 1 + r)]
    around = features[context] if len(context) else inside
    row = [
        np.log((b - a + 1) / rate),
        float(probs[a : b + 1].mean()),
        float(probs[a : b + 1].max()),
    ]
    for j in range(_BRIGHTNESS):  # pixel and histogram change per lag, unexplained change
        level = inside[:, j].mean()
        row += [np.log((level + _EPS) / (np.median(around[:, j]) + _EPS)), np.log(level + _EPS)]
    before = features[max(0, a - 3) : a] if a > 0 else features[:1]
    after = features[b + 1 : b + 4] if b + 1 < n else features[-1:]
    row.append(abs(after[:, _BRIGHTNESS].mean() - before[:, _BRIGHTNESS].mean()))
    edge_contrast = max(before[:, _CONTRAST].mean(), after[:, _CONTRAST].mean())
    row.append(np.log((inside[:, _CONTRAST].min() + _EPS) / (edge_contrast + _EPS)))
    row += [inside[:, _CONTRAST + 1 + j].mean() for j in range(len(gradual.BLEND_WINDOWS))]
    # Does the change go on after the run, or was there as much before it (a drift)?
    for side in (features[b + 1 : min(n, b + 1 + r)], features[max(0, a - r) : a]):
        level = side[:, 0].mean() if len(side) else inside[:, 0].mean()
        row.append(np.log((level + _EPS) / (inside[:, 0].mean() + _EPS)))
    # The change across the run: the longest lag that spans it, at the frame after it.
    span = b - a + 2
    lag = max([k for k in gradual.LAGS if k <= span] or [1])
    at = min(n - 1, b + 1 + max(0, lag - span))
    k = gradual.LAGS.index(lag)
    row += [features[at, 2 * k + 1], features[at, 2 * k]]
    return np.asarray(row, dtype=np.float64)


N_RUN_FEATURES = 3 + 2 * _BRIGHTNESS + 2 + len(gradual.BLEND_WINDOWS) + 2 + 2


@dataclass(frozen=True)
class RunCheck:
    """Logistic regression on standardised run features."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> RunCheck:
        z = np.load(path)
        return cls(z["mean"], z["scale"], z["weights"], float(z["bias"]))

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean, scale=self.scale, weights=self.weights, bias=self.bias)

    def probability(self, rows: np.ndarray) -> np.ndarray:
        """(n, N_RUN_FEATURES) -> (n,): how likely each run is a transition."""
        return _sigmoid(((rows - self.mean) / self.scale) @ self.weights + self.bias)


def fit(rows: np.ndarray, labels: np.ndarray, l2: float = 10.0, steps: int = 50) -> RunCheck:
    """Newton's method on the L2-penalised log loss (the bias unpenalised)."""
    mean, scale = rows.mean(axis=0), rows.std(axis=0) + 1e-9
    x = np.hstack([(rows - mean) / scale, np.ones((len(rows), 1))])
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - labels) + penalty * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return RunCheck(mean, scale, w[:-1], float(w[-1]))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@lru_cache(maxsize=1)
def load_check() -> RunCheck:
    return RunCheck.load()
