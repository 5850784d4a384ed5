"""Train the check on marked gradual runs (`tasks/run_check.py`).

    .venv/bin/python -m benchmarks.train_run_check [--train-seeds 622-699]

Its training data are the training generator's videos with in-shot events that the
shipped network did not learn from (the network learnt on seeds 500-621 before in-shot
events were added), made and measured as `benchmarks/train_gradual.py` does, in its
folders (either script makes what the other has not). Every run the network
marks there (with the check off) is one example: a transition when it finds a true
gradual transition (the benchmark's matching), else noise. The check is scored on the
event videos 700-711 and the benchmark generator's validation videos 100-119, with and
without it; the independent generator (`benchmarks/independent.py`) stays out of
training and tuning.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.synthetic import Truth, benchmark_video, training_video
from benchmarks.train_gradual import load_measurements, make_set, measure, seeds
from benchmarks.transitions import assign, score
from tasks import run_check
from tasks.transitions import (
    Measurements,
    TransitionConfig,
    cuts_and_gradual_probability,
    find_transitions,
    in_video_frames,
    marked_gradual,
    run_rows,
)

UNCHECKED = TransitionConfig(gradual_run_check=0.0)


def load_folder(folder: Path, pool: ProcessPoolExecutor) -> list[tuple[Measurements, list[Truth]]]:
    """A set's videos with their measurements (made once, cached beside each video)."""
    truths = [[Truth(**t) for t in ts] for ts in json.loads((folder / "truth.json").read_text())]
    videos = [folder / f"v{i:02d}.mp4" for i in range(len(truths))]
    return [
        (load_measurements(p), t) for p, t in zip(pool.map(measure, videos), truths, strict=True)
    ]


def examples(m: Measurements, truth: list[Truth]) -> tuple[np.ndarray, list[int]]:
    """Each run the network marks (before the check, as the pipeline sees it), its
    features and whether it is a transition (finds a true gradual one)."""
    _, probs = cuts_and_gradual_probability(m, UNCHECKED)
    runs = marked_gradual(probs, m, UNCHECKED)
    if not runs:
        return np.zeros((0, run_check.N_RUN_FEATURES)), []
    frames = [("gradual", a, b) for a, b, _ in in_video_frames(runs, m)]
    found = assign([t for t in truth if t.kind == "gradual"], frames)
    return run_rows(probs, m, runs), [int(f is not None) for f in found]


def evaluate(items: list[tuple[Measurements, list[Truth]]], cfg: TransitionConfig) -> dict:
    preds = [
        [(t.kind, t.start_frame, t.end_frame) for t in find_transitions(m, cfg)] for m, _ in items
    ]
    return score([t for _, t in items], preds)


def main() -> None:
    from flows.environment import apply_quiet_offline_defaults

    apply_quiet_offline_defaults()
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("capflow-work/gradual-training"))
    ap.add_argument("--train-seeds", default="622-699")
    ap.add_argument("--l2", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [(args.work / f"train{s}", s, 8, training_video) for s in seeds(args.train_seeds)]
        jobs += [(args.work / f"eval{s}", s, 8, training_video) for s in seeds("700-711")]
        jobs += [(args.work / f"val{s}", s, 16, benchmark_video) for s in seeds("100-119")]
        folders = list(pool.map(make_set, *zip(*jobs, strict=True)))  # made once, as there
        sets = {f.name: load_folder(f, pool) for f in folders}
    train = [it for s in seeds(args.train_seeds) for it in sets[f"train{s}"]]
    checks = {
        "with in-shot events (700-711)": [it for s in seeds("700-711") for it in sets[f"eval{s}"]],
        "benchmark generator (100-119)": [it for s in seeds("100-119") for it in sets[f"val{s}"]],
    }
    rows, labels = [], []
    for m, truth in train:
        r, y = examples(m, truth)
        rows.append(r)
        labels += y
    x, y = np.concatenate(rows), np.asarray(labels, dtype=np.float64)
    print(f"{len(train)} videos, {len(y)} marked runs, {int(len(y) - y.sum())} not transitions")
    check = run_check.fit(x, y, args.l2)
    check.save(run_check.WEIGHTS)
    run_check.load_check.cache_clear()
    checked = dataclasses.replace(UNCHECKED, gradual_run_check=TransitionConfig().gradual_run_check)
    for name, items in checks.items():
        for label, cfg in (("without the check", UNCHECKED), ("with it", checked)):
            s = evaluate(items, cfg)
            print(
                f"{name}, {label}: cut F1 {s['cut_f1']:.3f}, gradual P {s['gradual_p']:.3f} "
                f"R {s['gradual_r']:.3f} F1 {s['gradual_f1']:.3f}"
            )
    print(f"wrote {run_check.WEIGHTS} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
