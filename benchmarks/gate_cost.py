"""What the clips quality gate costs per 10,000 rows (17 checks, COMPLETE results).

    python -m benchmarks.gate_cost [--rows 10000]

Rows are realistic: 384-d unit embeddings, 40-80 word captions, 2-5 keyframes, 1% of
rows with a planted defect, so the unexpected-index lists are not empty.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from quality.gate import gate_clips
from quality.suites import QualityConfig

WORDS = "a dark blue scene with fast motion to the right box moves across frame".split()  # noqa: SIM905


def make_rows(n: int, dim: int = 384) -> list[dict]:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = []
    for i in range(n):
        k = int(rng.integers(2, 6))
        times = [0.5 + 2 * j for j in range(k)]
        caption = " ".join(rng.choice(WORDS, size=int(rng.integers(40, 80)))) + f" clip {i}."
        rows.append(
            {
                "clip_id": f"c{i}",
                "start_s": 0.5,
                "end_s": 0.5 + 2 * k,
                "duration_s": 2.0 * k,
                "transitions_inside": 0,
                "aesthetic_score": float(rng.uniform(3, 9)),
                "motion_score": float(rng.uniform(0, 0.05)),
                "keyframe_times": times,
                "caption": caption if i % 100 else "I'm sorry, I cannot help with that.",
                "caption_repetition": 0.1,
                "differential_captions": [{"t": t, "text": "x"} for t in times],
                "text_embedding": vecs[i].tolist(),
            }
        )
    return rows


def main() -> None:
    from flows.environment import apply_quiet_offline_defaults

    apply_quiet_offline_defaults()
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    args = ap.parse_args()
    rows = make_rows(args.rows)
    gate_clips(rows[:10], QualityConfig(), 384, expected=10)  # registers the suite
    t0, c0 = time.perf_counter(), time.process_time()
    result = gate_clips(rows, QualityConfig(), 384, expected=len(rows))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{args.rows} rows, load {os.getloadavg()[0]:.2f}: {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(f"per 10,000 rows: {wall * 10_000 / args.rows:.2f} s; failed rows: {len(result.failed)}")


if __name__ == "__main__":
    main()
