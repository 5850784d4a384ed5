"""Score the independent sets under changed settings, and list what the detector got wrong.

    .venv/bin/python -m benchmarks.transitions_errors --seeds 197-206 [--set k=v ...] [--list]

The loop for working on the detector: each video is decoded and measured once (kept
beside it, keyed like `train_gradual`'s cache, so a changed decode measures again), then
every run only decides, which takes seconds for a hundred videos. `--set` changes any
`TransitionConfig` field that only decides (a measured one needs a fresh cache: see
`train_gradual.measurement_key`). `--list` prints each false transition with the in-shot
events it touches and each missed truth with its join, to look at with any player.
Seeds that are scored here are looked at: leave the next fresh set alone until the
change is made (benchmarks/README.md, "On an independent generator").
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
from pathlib import Path

from benchmarks.independent import Labelled, independent_set
from benchmarks.train_gradual import load_measurements, measure, seeds
from benchmarks.transitions import assign, charge, f1_intervals, score
from tasks.transitions import TransitionConfig, find_transitions


def settings(pairs: list[str]) -> TransitionConfig:
    """`TransitionConfig` with k=v pairs, each value of its field's type."""
    defaults = TransitionConfig()
    kinds = {f.name: type(getattr(defaults, f.name)) for f in fields(TransitionConfig)}
    kinds["hwaccel"] = str  # None by default
    changed = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in kinds:
            raise SystemExit(f"no TransitionConfig field {key!r}")
        changed[key] = value == "True" if kinds[key] is bool else kinds[key](value)
    return replace(TransitionConfig(), **changed)


def errors(video: Labelled, found: list[tuple[str, int, int]]) -> list[str]:
    """One line per false transition (with its cause) and per missed truth (with its join)."""
    false, _ = charge(video, found)
    name = f"{video.path.parent.name}/{video.path.name}"  # x197/x03.mp4
    lines = [f"false {kind} {name}: frames {a}-{b}, {cause}" for kind, a, b, cause in false]
    matched = {i for i in assign(video.truth, found) if i is not None}
    for i, (t, join) in enumerate(zip(video.truth, video.joins, strict=True)):
        if i not in matched:
            lines.append(f"missed {join} {name}: frames {t.start}-{t.end}")
    return lines


def main() -> None:
    from flows.environment import apply_quiet_offline_defaults

    apply_quiet_offline_defaults()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", required=True, help="e.g. 197-206 or 197,199")
    ap.add_argument("--set", action="append", default=[], metavar="K=V")
    ap.add_argument("--list", action="store_true", help="each false and missed transition")
    ap.add_argument("--dir", type=Path, default=Path("capflow-work/independent"))
    args = ap.parse_args()
    cfg = settings(args.set)
    videos = [v for s in seeds(args.seeds) for v in independent_set(args.dir / f"x{s}", s, 12)]
    with ProcessPoolExecutor(2) as pool:  # measuring decodes: one video per core
        caches = list(pool.map(measure, [v.path for v in videos]))
    found = [
        [(t.kind, t.start_frame, t.end_frame) for t in find_transitions(load_measurements(c), cfg)]
        for c in caches
    ]
    if args.list:
        for video, mine in zip(videos, found, strict=True):
            for line in errors(video, mine):
                print(line)
    truths = [v.truth for v in videos]
    s, (cut, grad) = score(truths, found), f1_intervals(truths, found).values()
    print(
        f"{len(videos)} videos: cut P {s['cut_p']:.3f} R {s['cut_r']:.3f} F1 {s['cut_f1']:.3f} "
        f"[{cut[0]:.3f}, {cut[1]:.3f}]; gradual P {s['gradual_p']:.3f} R {s['gradual_r']:.3f} "
        f"F1 {s['gradual_f1']:.3f} [{grad[0]:.3f}, {grad[1]:.3f}]"
    )


if __name__ == "__main__":
    main()
