"""Keyframe selection and aesthetic scoring throughput on CPU.

    python -m benchmarks.keyframes_aesthetic [--seconds 60] [--size 1280x720]

A synthetic video (test pattern with cuts every 5 s) is decoded through the policy
(candidates every 2 s, streamed); then keyframes are scored with the heuristic, and
with the tiny random CLIP + MLP (the laion code path: its cost, not its judgement).
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.scratch import scratch_dir
from storage.types import ClipSpan, ProbeInfo
from tasks.aesthetic import AestheticConfig, HeuristicScorer, make_scorer
from tasks.keyframes import KeyframeConfig, extract_keyframes
from tasks.probe import ProbeConfig, probe_video


def main() -> None:
    from flows.environment import apply_quiet_offline_defaults
    from tests.helpers import make_media
    from tests.models_clip import build_random_aesthetic_mlp, build_tiny_clip

    apply_quiet_offline_defaults()
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--size", default="1280x720")
    args = ap.parse_args()
    tmp = scratch_dir("capflow-keyframes-")
    video = make_media(
        tmp / "bench.mp4",
        f"testsrc2=s={args.size}:r=30,hue=h='floor(t/5)*60'",
        args.seconds,
    )
    probe = probe_video(video, ProbeConfig())
    assert isinstance(probe, ProbeInfo)
    clip = ClipSpan(0, 0.0, float(args.seconds))
    t0 = time.perf_counter()
    kfs = extract_keyframes(video, probe, clip, KeyframeConfig())
    kf_wall = time.perf_counter() - t0
    assert isinstance(kfs, list)
    t0 = time.perf_counter()
    HeuristicScorer().score(kfs)
    heur_wall = time.perf_counter() - t0
    laion = make_scorer(
        AestheticConfig(
            scorer="laion",
            clip_model=str(build_tiny_clip(tmp / "clip")),
            mlp_path=str(build_random_aesthetic_mlp(tmp / "mlp.pth")),
        )
    )
    laion.score(kfs[:2])
    t0 = time.perf_counter()
    laion.score(kfs)
    laion_wall = time.perf_counter() - t0
    candidates = args.seconds // 2
    print(f"{args.seconds} s of {args.size} H.264, load {os.getloadavg()[0]:.2f}")
    print(
        f"keyframes: {candidates} candidates -> {len(kfs)} kept in {kf_wall:.2f} s "
        f"({candidates / kf_wall:.1f} candidates/s, {args.seconds / kf_wall:.1f}x real time)"
    )
    print(f"heuristic: {len(kfs) / heur_wall:.1f} keyframes/s")
    print(f"laion path (tiny CLIP, features recomputed): {len(kfs) / laion_wall:.1f} keyframes/s")


if __name__ == "__main__":
    main()
