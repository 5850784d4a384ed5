"""Caption search in LanceDB: build time, memory, latency and recall, with the shipped defaults.

    python -m benchmarks.search [--sizes 100000 1000000] [--kinds lowrank clustered]
        [--minilm 30000] [--queries 200]

Everything goes through `LanceStore.maintain_indexes(IndexPolicy())` and
`LanceStore.search(vector, k=10, where=...)` with no tuning passed: the index type, its
partitions and the query knobs are what capflow picks from the table's size.

Three kinds of 384-d vectors, none of which tuned the defaults:
- `lowrank`: a 32-d latent plus as much noise again, unit norm. Neighbourhoods have no
  cluster structure, so IVF partitions cut through them: the hard case.
- `clustered`: topics within themes (the way caption embeddings group: "a dog on a
  beach", "a dog in snow"), with a spread of topic sizes. Seeded apart from `lowrank`.
- `minilm`: all-MiniLM-L6-v2 embeddings of generated captions (subjects, actions,
  places, styles, camera words), the real model on text like the pipeline's.

Queries are rows perturbed by noise (each has true near neighbours) and, for `minilm`,
captions written for the query set. Recall@10 is against exact cosine search in numpy,
under the same filter. The table has the real search columns, a `duplicate_of` mark on
3% of rows (left out of results by default, so every search filters) and varied clip
times, so column reads cost what they do in a real table.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from benchmarks.scratch import scratch_dir
from storage import schema
from storage.lance_store import IndexPolicy, LanceStore, SearchTuning, partitions_for

DIM = 384
FILTERS = {  # name -> the aesthetic score a filter keeps rows above (None: no filter)
    "none": None,
    "aesthetic_score > 5 (50%)": 5.0,
    "aesthetic_score > 9.5 (5%)": 9.5,
}


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def lowrank(n: int, rng: np.random.Generator) -> np.ndarray:
    basis = rng.normal(size=(32, DIM)).astype(np.float32)
    x = rng.normal(size=(n, 32)).astype(np.float32) @ basis
    x += 0.3 * np.linalg.norm(basis, axis=1).mean() * rng.normal(size=(n, DIM)).astype(np.float32)
    return unit(x)


def clustered(n: int, rng: np.random.Generator) -> np.ndarray:
    """Themes -> topics -> rows; topic sizes follow a power law, as real catalogues do."""
    themes = unit(rng.normal(size=(200, DIM)))
    topic_theme = rng.integers(0, 200, 20_000)
    topics = unit(themes[topic_theme] + 0.6 * unit(rng.normal(size=(20_000, DIM))))
    weights = 1.0 / np.arange(1, 20_001) ** 0.8
    member = rng.choice(20_000, n, p=weights / weights.sum())
    out = np.empty((n, DIM), np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        out[s:e] = unit(topics[member[s:e]] + 0.35 * unit(rng.normal(size=(e - s, DIM))))
    return out


SUBJECTS = [
    "a dog",
    "two children",
    "an old man",
    "a red car",
    "a cyclist",
    "a chef",
    "a cat",
    "a crowd",
    "a drone shot of a city",
    "a woman in a yellow coat",
    "a horse",
    "a sailboat",
    "a train",
    "a street musician",
    "a robot arm",
]
ACTIONS = [
    "runs",
    "walks slowly",
    "jumps",
    "turns around",
    "waves",
    "cooks",
    "dances",
    "rides past",
    "stops",
    "looks at the camera",
    "eats",
    "plays",
    "reads",
    "climbs",
    "falls",
]
PLACES = [
    "on a beach",
    "in the snow",
    "in a kitchen",
    "at night in the rain",
    "in a forest",
    "on a busy street",
    "in a stadium",
    "in an office",
    "by a lake",
    "on a mountain road",
    "in a market",
    "in a studio",
]
STYLES = [
    "close-up",
    "wide shot",
    "slow motion",
    "time-lapse",
    "handheld",
    "aerial view",
    "black and white",
    "warm light",
    "neon colours",
    "soft focus",
]


def captions(n: int, rng: np.random.Generator) -> list[str]:
    pick = [rng.integers(0, len(x), n) for x in (SUBJECTS, ACTIONS, PLACES, STYLES)]
    return [
        f"{STYLES[d]}: {SUBJECTS[a]} {ACTIONS[b]} {PLACES[c]}"
        for a, b, c, d in zip(*pick, strict=True)
    ]


def table_batches(vecs: np.ndarray, rng: np.random.Generator) -> Iterator[pa.RecordBatch]:
    n = len(vecs)
    scores = rng.uniform(0, 10, n).astype(np.float32)
    dup = rng.random(n) < 0.03
    starts = rng.uniform(0, 60, n)
    for s in range(0, n, 50_000):
        e = min(n, s + 50_000)
        yield pa.RecordBatch.from_pydict(
            {
                "clip_id": [f"c{i}" for i in range(s, e)],
                "bucket": ["b"] * (e - s),
                "key": [f"k{i // 5}.mp4" for i in range(s, e)],
                "etag": ["e"] * (e - s),
                "source": [f"s3://b/k{i // 5}.mp4" for i in range(s, e)],
                "start_s": starts[s:e],
                "end_s": starts[s:e] + rng.uniform(2, 8, e - s),
                "caption": [f"clip {i} caption" for i in range(s, e)],
                "caption_model": ["describe"] * (e - s),
                "aesthetic_score": scores[s:e],
                "duplicate_of": [f"c{i - 1}" if dup[i] else None for i in range(s, e)],
                "text_embedding": pa.FixedSizeListArray.from_arrays(
                    pa.array(vecs[s:e].ravel()), DIM
                ),
            },
            schema=bench_schema(),
        )


def bench_schema() -> pa.Schema:
    full = schema.clips_schema(DIM)
    keep = [
        "clip_id", "bucket", "key", "etag", "source", "start_s", "end_s", "caption",
        "caption_model", "aesthetic_score", "text_embedding",
    ]  # fmt: skip
    fields = [full.field(k) for k in keep]  # the duplicates stage's column:
    return pa.schema([*fields[:-1], pa.field("duplicate_of", pa.string()), fields[-1]])


def column_values(table) -> tuple[np.ndarray, np.ndarray]:
    data = table.search().select(["aesthetic_score", "duplicate_of"]).limit(None).to_arrow()
    return data["aesthetic_score"].to_numpy(), data["duplicate_of"].is_null().to_numpy(False)


def exact_top10(
    vecs: np.ndarray, queries: np.ndarray, keep: np.ndarray, first_added: int | None = None
) -> list[set[str]]:
    """Each query's right answers: the kept rows at least as similar as its exact 10th
    (more than ten when rows tie: identical captions embed identically). Rows from
    `first_added` on are named as the ones added after the build."""
    sims = np.concatenate(
        [queries @ vecs[s : s + 200_000].T for s in range(0, len(vecs), 200_000)], axis=1
    )
    sims[:, ~keep] = -np.inf
    tenth = -np.partition(-sims, 9, axis=1)[:, 9]
    added = len(vecs) if first_added is None else first_added
    return [
        {f"new{i - added}" if i >= added else f"c{i}" for i in np.flatnonzero(row >= t - 1e-5)}
        for row, t in zip(sims, tenth, strict=True)
    ]


def run_queries(
    store: LanceStore,
    queries: np.ndarray,
    truth: list[set[str]],
    where: str | None,
    tuning: SearchTuning | None = None,
) -> tuple[float, float, float, float]:
    """p50, p95, p99 in ms and mean recall@10."""
    lat, recalls = [], []
    for q, right in zip(queries, truth, strict=True):  # one at a time, as a user asks
        t0 = time.perf_counter()
        hits = store.search(q.tolist(), k=10, where=where, tuning=tuning)
        lat.append((time.perf_counter() - t0) * 1000)
        recalls.append(len({h.clip_id for h in hits} & right) / 10)
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return p50, p95, p99, float(np.mean(recalls))


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def make_vectors(kind: str, n: int, rng: np.random.Generator, queries: int):
    if kind == "minilm":
        from tasks.embed import EmbedConfig, embed_texts

        texts = captions(n + queries, rng)
        vecs = embed_texts(texts, EmbedConfig(batch_size=256)).astype(np.float32)
        return vecs[:n], vecs[n:]  # queries: captions of their own, not rows
    vecs = (lowrank if kind == "lowrank" else clustered)(n, rng)
    pick = rng.choice(n, queries, replace=False)
    return vecs, unit(vecs[pick] + 0.05 * rng.normal(size=(queries, DIM)))


def bench(kind: str, n: int, queries: int, seed: int, sweep: bool = False) -> None:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    vecs, qs = make_vectors(kind, n, rng, queries)
    made = time.perf_counter() - t0
    store = LanceStore(str(scratch_dir("capflow-bench-")))
    t0 = time.perf_counter()
    store.db.create_table(schema.CLIPS, data=table_batches(vecs, rng), schema=bench_schema())
    write_s = time.perf_counter() - t0
    table = store.open_table(schema.CLIPS)
    scores, not_dup = column_values(table)

    def line(what: str, build: str = "", res: tuple | None = None) -> None:
        p = " | ".join(f"{x:.1f}" for x in res[:3]) + f" | {res[3]:.3f}" if res else "| | |"
        print(f"| {kind} | {n:,} | {what} | {build} | {p} | {os.getloadavg()[0]:.1f} |", flush=True)

    def each_filter(what: str, build: str) -> None:
        for name, above in FILTERS.items():
            keep = not_dup if above is None else not_dup & (scores > above)
            where = None if above is None else f"aesthetic_score > {above}"
            line(
                f"{what}, {name}", build, run_queries(store, qs, exact_top10(vecs, qs, keep), where)
            )

    line(f"vectors {made:.0f} s; table written {write_s:.1f} s")
    if n <= 200_000:
        each_filter("flat scan", "-")
    rss0 = rss_gib()
    t0 = time.perf_counter()
    store.maintain_indexes(IndexPolicy(vector_index_min_rows=0))
    build = time.perf_counter() - t0
    index = f"IVF_HNSW_SQ, {partitions_for(n)} partitions"
    line(f"{index}: build; peak RSS {rss0:.1f} -> {rss_gib():.1f} GiB", f"{build:.0f}")
    each_filter(index, "")
    if sweep:  # other query settings on the same index, for the choice of defaults
        truth = exact_top10(vecs, qs, not_dup)
        for nprobes, ef in ((4, 200), (8, 200), (16, 100), (16, 300), (32, 200)):
            tuning = SearchTuning(nprobes=min(nprobes, partitions_for(n)), ef=ef)
            res = run_queries(store, qs, truth, None, tuning)
            line(f"{index}, none, nprobes {tuning.nprobes} ef {ef}", "", res)
    # A run lands 1% more rows; maintain_indexes folds them into the index.
    extra = unit(vecs[rng.choice(n, n // 100)] + 0.1 * unit(rng.normal(size=(n // 100, DIM))))
    batch = next(table_batches(extra, rng))
    batch = batch.set_column(0, "clip_id", pa.array([f"new{i}" for i in range(len(extra))]))
    batch = batch.set_column(10, "duplicate_of", pa.nulls(len(extra), pa.string()))
    t0 = time.perf_counter()
    table.add(pa.Table.from_batches([batch]))
    store.maintain_indexes(IndexPolicy(vector_index_min_rows=0))
    fold_s = time.perf_counter() - t0
    targets = unit(extra[:queries] + 0.05 * rng.normal(size=(min(queries, len(extra)), DIM)))
    keep = np.concatenate([not_dup, np.ones(len(extra), bool)])
    truth = exact_top10(np.concatenate([vecs, extra]), targets, keep, first_added=n)
    res = run_queries(store, targets, truth, None)
    line(
        f"{len(extra):,} rows added, then maintain_indexes: queries near them", f"{fold_s:.1f}", res
    )


def main() -> None:
    from flows.environment import apply_quiet_offline_defaults

    apply_quiet_offline_defaults()
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--kinds", nargs="+", default=["lowrank", "clustered"])
    ap.add_argument("--minilm", type=int, default=30_000, help="rows of MiniLM captions (0: none)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep-from", type=int, default=500_000, help="rows: try other settings")
    args = ap.parse_args()
    print("| vectors | rows | what | build s | p50 ms | p95 ms | p99 ms | recall@10 | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    if args.minilm:
        bench("minilm", args.minilm, args.queries, args.seed + 2)
    for n in args.sizes:
        for i, kind in enumerate(args.kinds):
            bench(kind, n, args.queries, args.seed + i, sweep=n >= args.sweep_from)


if __name__ == "__main__":
    main()
