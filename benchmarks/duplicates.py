"""Near-duplicates: does the fingerprint tell copies from other footage, and what does the
check cost a landing against a 100k-clip table?

    python -m benchmarks.duplicates [--rows 100000] [--batch 16]

Accuracy, on footage the threshold was not chosen on: scenes from the test helper's
generator with seeds 200-205 (the threshold was set on the demo samples and seeds 3-6)
and four lavfi sources the tuning never used (life, cellauto, a mandelbrot zoom, plasma
made with geq). Each source is also copied three ways: re-encoded at 120 kb/s and half
size, cropped by 6 % and scaled back, and trimmed by one second. Every video goes through
the single-video path (flows.single.whole_video: probe, decode pass, the stage list),
whose `duplicates` stage records the fingerprint. Reported: the lowest copy similarity,
the highest similarity between different sources, and the errors at the shipped
threshold.

Cost: a clips table of `--rows` random clustered 192-d fingerprints on local disk; a batch
of `--batch` new clips checked (`DuplicateCheck.mark`: the nearest neighbours of each
clip in the table, plus the batch against itself), without an index, and after the
IVF_HNSW_SQ index that maintain_indexes builds at 100k rows; side by side with the write
of the same rows
(merge_insert), the landing's own cost. One query carries the whole batch's vectors;
the shipped default scans exactly up to `duplicates.exact_search_max_rows` (1M) and goes
through the index past it; both are timed. Medians of 5.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _ffmpeg(*args: str) -> None:
    from tasks import media

    argv = [media.ffmpeg_path(), "-nostdin", "-v", "error", *args]
    result = media.run(argv, timeout_s=300)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-300:])


X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
LAVFI = {
    "life": "life=s=320x180:mold=10:r=25:ratio=0.1:seed=7:death_color=#C83232:life_color=#00ff00",
    "cellauto": "cellauto=s=320x180:rule=110:r=25:seed=7",
    "mandelbrot_zoom": "mandelbrot=s=320x180:r=25:start_scale=1.5:end_scale=0.3",
    "plasma": "nullsrc=s=320x180:r=25,geq=r='128+100*sin(X/20+T)':g='128+100*sin(Y/15-T)'"
    ":b='128+100*sin((X+Y)/25+T*2)'",
}


def sources(tmp: Path) -> dict[str, Path]:
    from tests.helpers import render_video, scene

    out = {}
    for seed in range(200, 206):
        path = tmp / f"scene{seed}.mp4"
        render_video(path, lambda i, s=seed: scene(i, size=(480, 270), seed=s), 125, (480, 270))
        out[f"scene{seed}"] = path
    for name, graph in LAVFI.items():
        path = tmp / f"{name}.mp4"
        _ffmpeg("-f", "lavfi", "-i", graph, "-t", "5", *X264, "-y", str(path))
        out[name] = path
    return out


def copies(src: Path) -> dict[str, Path]:
    out = {}
    for kind, args in {
        "reencoded": ["-b:v", "120k", "-vf", "scale=iw/2:-2"],
        "cropped": ["-vf", "crop=trunc(iw*0.47)*2:trunc(ih*0.47)*2,scale=trunc(iw/0.94/2)*2:-2"],
        "trimmed": ["-ss", "1"],
    }.items():
        path = src.with_name(f"{src.stem}.{kind}.mp4")
        _ffmpeg("-i", str(src), *args, *X264, "-y", str(path))
        out[kind] = path
    return out


def accuracy(tmp: Path) -> None:
    from flows.config import build_config
    from flows.single import whole_video
    from tasks.duplicates import FINGERPRINT_COLUMN, DuplicatesConfig

    config = build_config(overrides={"motion": {"filter_static": False}}, environ={})
    threshold = DuplicatesConfig().min_similarity_fingerprint

    def fp(path: Path) -> np.ndarray:
        return np.asarray(whole_video(path, config).scores[FINGERPRINT_COLUMN])

    originals = sources(tmp)
    prints = {name: fp(path) for name, path in originals.items()}
    copy_sims = {}
    for name, path in originals.items():
        for kind, copy in copies(path).items():
            copy_sims[(name, kind)] = float(fp(copy) @ prints[name])
    distinct = {(a, b): float(prints[a] @ prints[b]) for a, b in itertools.combinations(prints, 2)}
    missed = [k for k, s in copy_sims.items() if s < threshold]
    false = [k for k, s in distinct.items() if s >= threshold]
    by_kind = {
        kind: min(s for (_, k), s in copy_sims.items() if k == kind)
        for kind in ("reencoded", "cropped", "trimmed")
    }
    worst_pair = max(distinct, key=lambda k: distinct[k])
    print(
        f"sources {len(originals)} (6 generated scenes, {len(LAVFI)} lavfi), threshold {threshold}"
    )
    print("lowest copy similarity: " + ", ".join(f"{k} {v:.3f}" for k, v in by_kind.items()))
    print(f"highest distinct similarity: {distinct[worst_pair]:.3f} {worst_pair}")
    print(f"copies missed {len(missed)}/{len(copy_sims)} {missed}")
    print(f"distinct pairs called copies {len(false)}/{len(distinct)} {false}")


def cost(tmp: Path, rows: int, batch: int) -> None:
    from flows.dedup import DuplicateCheck
    from storage import schema
    from storage.lance_store import IndexPolicy, LanceStore
    from storage.schema import ClipRow
    from tasks.duplicates import (
        FINGERPRINT_COLUMN,
        FINGERPRINT_DIM,
        DuplicatesConfig,
        DuplicatesStage,
    )

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(256, FINGERPRINT_DIM))

    def fingerprints(n: int) -> np.ndarray:
        v = centres[rng.integers(0, len(centres), n)] + rng.normal(
            scale=0.8, size=(n, FINGERPRINT_DIM)
        )
        v -= v.mean(axis=1, keepdims=True)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def make_rows(n: int, prefix: str) -> list[ClipRow]:
        vectors = fingerprints(n)
        return [
            ClipRow(clip_id=f"{prefix}{i:07d}", bucket="b", key=f"{prefix}/{i // 4:06d}.mp4",
                    etag="e", start_s=float(i % 4) * 5, caption="a clip", motion_score=0.1,
                    text_embedding=vectors[i, :8].tolist(), extra={FINGERPRINT_COLUMN: vectors[i].tolist()})
            for i in range(n)
        ]  # fmt: skip

    store = LanceStore(str(tmp / "lance"))
    extra = DuplicatesStage.columns
    dims = {"embedding_dim": 8, "image_dim": None}
    started = time.perf_counter()
    for part in range(0, rows, 20_000):
        store.write(
            schema.CLIPS_TABLE, make_rows(min(20_000, rows - part), f"t{part}_"), dims, extra
        )
    print(f"table of {rows} clips written in {time.perf_counter() - started:.1f} s")
    check = DuplicateCheck(store, DuplicatesConfig())

    def timed(label: str, check: DuplicateCheck) -> None:
        check_ms, write_ms = [], []
        for round_ in range(5):
            new = make_rows(batch, f"n{label}{round_}_")
            started = time.perf_counter()
            check.mark(new, [])
            check_ms.append((time.perf_counter() - started) * 1000 / batch)
            started = time.perf_counter()
            store.write(schema.CLIPS_TABLE, new, dims, extra)
            write_ms.append((time.perf_counter() - started) * 1000 / batch)
        c, w = statistics.median(check_ms), statistics.median(write_ms)
        print(f"{label}: check {c:.1f} ms/clip, write {w:.1f} ms/clip, check/write {c / w:.2f}")

    timed("exact scan, no index", check)
    started = time.perf_counter()
    created = store.maintain_indexes(IndexPolicy(vector_index_min_rows=rows))
    print(f"indexes {created} built in {time.perf_counter() - started:.0f} s")
    timed("exact scan beside the index (shipped default)", check)
    timed("through IVF_HNSW_SQ", DuplicateCheck(store, DuplicatesConfig(exact_search_max_rows=0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_accuracy:
            accuracy(Path(tmp))
        cost(Path(tmp), args.rows, args.batch)


if __name__ == "__main__":
    main()
