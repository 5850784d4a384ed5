"""Caption search in LanceDB at 100k and 1M clips: build time, latency, recall, landing rate.

    python -m benchmarks.search [--sizes 100000 1000000] [--queries 100]

Vectors are 384-d and structured like real sentence embeddings (a 32-d latent plus
noise, unit norm; i.i.d. random vectors make every ANN index look broken). Queries are
perturbed rows, so each has true near neighbours. Recall@10 is against exact cosine
search computed with numpy in the same run, with and without the filter.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pyarrow as pa

from storage import schema
from storage.lance_store import IndexPolicy, LanceStore, SearchTuning

DIM = 384


def lowrank(n: int, rng: np.random.Generator) -> np.ndarray:
    basis = rng.normal(size=(32, DIM)).astype(np.float32)
    x = rng.normal(size=(n, 32)).astype(np.float32) @ basis
    x += 0.3 * np.linalg.norm(basis, axis=1).mean() * rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def batches(vecs: np.ndarray, scores: np.ndarray, size: int = 50_000):
    for s in range(0, len(vecs), size):
        e = min(len(vecs), s + size)
        n = e - s
        yield pa.RecordBatch.from_pydict(
            {
                "clip_id": [f"c{i}" for i in range(s, e)],
                "bucket": ["b"] * n,
                "key": [f"k{i // 5}.mp4" for i in range(s, e)],
                "etag": ["e"] * n,
                "source": [f"s3://b/k{i // 5}.mp4" for i in range(s, e)],
                "start_s": np.zeros(n),
                "end_s": np.full(n, 4.0),
                "caption": [f"clip {i} caption" for i in range(s, e)],
                "caption_model": ["describe"] * n,
                "aesthetic_score": scores[s:e].astype(np.float32),
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
    return pa.schema([full.field(k) for k in keep])


def exact_top10(vecs: np.ndarray, queries: np.ndarray, mask: np.ndarray | None) -> list[set[str]]:
    sims = np.concatenate(
        [queries @ vecs[s : s + 200_000].T for s in range(0, len(vecs), 200_000)], axis=1
    )
    if mask is not None:
        sims[:, ~mask] = -np.inf
    top = np.argpartition(-sims, 10, axis=1)[:, :10]
    return [{f"c{i}" for i in row} for row in top]


def run_queries(store, queries, truth, where, tuning):
    lat, recalls = [], []
    for q, t in zip(queries, truth, strict=True):  # one at a time, as a user asks
        t0 = time.perf_counter()
        hits = store.search(q.tolist(), k=10, where=where, tuning=tuning)
        lat.append((time.perf_counter() - t0) * 1000)
        recalls.append(len({h.clip_id for h in hits} & t) / 10)
    return np.percentile(lat, 50), np.percentile(lat, 95), float(np.mean(recalls))


def main() -> None:
    from flows.environment import apply_quiet_offline_defaults

    apply_quiet_offline_defaults()
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("| N | what | build s | p50 ms | p95 ms | recall@10 | load |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        vecs = lowrank(n, rng)
        scores = rng.uniform(0, 10, n)
        pick = rng.choice(n, args.queries, replace=False)
        queries = vecs[pick] + 0.05 * rng.normal(size=(args.queries, DIM)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        truth = exact_top10(vecs, queries, None)
        where, mask = "aesthetic_score > 5", scores > 5
        truth_f = exact_top10(vecs, queries, mask)
        store = LanceStore(tempfile.mkdtemp(prefix="capflow-bench-"))
        t0 = time.perf_counter()
        store.db.create_table(schema.CLIPS, data=batches(vecs, scores), schema=bench_schema())
        write_s = time.perf_counter() - t0

        def row(what: str, build: str, res: tuple[float, float, float], n: int = n) -> None:
            p50, p95, rec = res
            print(
                f"| {n:,} | {what} | {build} | {p50:.1f} | {p95:.1f} | {rec:.3f} | "
                f"{os.getloadavg()[0]:.1f} |",
                flush=True,
            )

        print(f"| {n:,} | write table ({n / write_s:,.0f} rows/s) | {write_s:.1f} | | | | |")
        if n <= 200_000:
            row("flat scan", "-", run_queries(store, queries, truth, None, SearchTuning()))
        t0 = time.perf_counter()
        store.maintain_indexes(IndexPolicy(vector_index_min_rows=0))
        build_s = time.perf_counter() - t0
        parts = max(1, n // IndexPolicy().rows_per_partition)
        for tuning in (
            SearchTuning(16, 100, 5),
            SearchTuning(32, 200, 5),
            SearchTuning(64, 300, 10),
        ):
            label = (
                f"IVF_HNSW_SQ ({parts} parts) nprobes={tuning.nprobes} ef={tuning.ef} "
                f"refine={tuning.refine_factor}"
            )
            row(label, f"{build_s:.0f}", run_queries(store, queries, truth, None, tuning))
            row(label + " + where", "", run_queries(store, queries, truth_f, where, tuning))
        # Landing throughput: merge_insert upserts of 10k rows (half new, half updates).
        table = store.open_table(schema.CLIPS)
        extra = lowrank(10_000, rng)
        batch = next(
            batches(np.concatenate([vecs[:5000], extra[:5000]]), rng.uniform(0, 10, 10_000))
        )
        ids = [f"c{i}" for i in range(5000)] + [f"new{i}" for i in range(5000)]
        batch = batch.set_column(0, "clip_id", pa.array(ids))
        t0 = time.perf_counter()
        merge = table.merge_insert("clip_id").when_matched_update_all()
        merge.when_not_matched_insert_all().execute(batch)
        up_s = time.perf_counter() - t0
        rate = f"{10_000 / up_s:,.0f} rows/s"
        print(f"| {n:,} | upsert 10k rows (merge_insert, {rate}) | {up_s:.2f} | | | | |")


if __name__ == "__main__":
    main()
