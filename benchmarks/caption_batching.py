"""Wavefront batching vs. per-clip sequential DiffSW captioning, same model, same clips.

    python -m benchmarks.caption_batching [--model hf:PATH] [--clips 32] [--keyframes 4]

Without --model it builds the tiny random LLaVA from tests/models.py (CPU figure). On a
GPU pass a real model, e.g. --model hf:llava-hf/llava-onevision-qwen2-0.5b-ov-hf.
Prints clips/s and generated tokens/s for pool sizes 1 (sequential) and N, run side by
side in one process, and the speed-up ratio.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks.scratch import scratch_dir
from storage.records import ClipRecord
from storage.types import ClipSpan, Keyframe
from tasks.caption import CaptionConfig, load_model
from tasks.diffsw import DiffSWCaptioner, DiffSWOptions


def make_clips(n: int, keyframes: int, size: tuple[int, int] = (224, 384)) -> list[ClipRecord]:
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n):
        kfs = [
            Keyframe(2.0 * k + 0.04 * i, rng.integers(0, 255, (*size, 3), dtype=np.uint8))
            for k in range(keyframes)
        ]
        clips.append(ClipRecord(ClipSpan(i, 0.0, 2.0 * keyframes), keyframes=kfs))
    return clips


def measure(model, clips: list[ClipRecord], pool: int) -> dict[str, float]:
    before = getattr(model, "generated_tokens", 0)
    t0, c0 = time.perf_counter(), time.process_time()
    DiffSWCaptioner(model, DiffSWOptions(pool_size=pool)).caption(clips)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = getattr(model, "generated_tokens", 0) - before
    return {
        "pool": pool,
        "wall_s": wall,
        "cpu_s": cpu,
        "clips_s": len(clips) / wall,
        "tok_s": tokens / wall,
    }


def main() -> None:
    from flows.environment import apply_quiet_offline_defaults

    apply_quiet_offline_defaults()
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--keyframes", type=int, default=4)
    ap.add_argument("--pool", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()
    spec = args.model
    if spec is None:
        from tests.models import build_tiny_llava

        spec = "hf:" + str(build_tiny_llava(scratch_dir("capflow-llava-") / "tiny-llava"))
    model = load_model(CaptionConfig(captioner=spec, max_new_tokens=args.max_new_tokens))
    measure(model, make_clips(2, args.keyframes), 2)  # warm-up: first generate() pays one-offs
    import torch

    device = "cuda" if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"
    print(f"model {spec} on {device}; load {os.getloadavg()[0]:.2f}")
    # Fresh records for each: captioning fills them in place.
    rows = [measure(model, make_clips(args.clips, args.keyframes), pool) for pool in (1, args.pool)]
    print("| pool | wall s | cpu s | clips/s | tokens/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['pool']}", f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}"]
        cells += [f"{r['clips_s']:.2f}", f"{r['tok_s']:.0f}"]
        print("| " + " | ".join(cells) + " |")
    print(
        f"speed-up (clips/s, pool {args.pool} vs 1): {rows[1]['clips_s'] / rows[0]['clips_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
