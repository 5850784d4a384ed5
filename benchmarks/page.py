"""`capflow serve` on a 100k-clip table: API search latency and the first page's render.

    python -m benchmarks.page [--rows 100000] [--queries 100] [--seed 11]

The table: `--rows` clips whose captions are drawn from a template grammar with the seed
(colours, subjects, motions, places): 10,000 of them embedded by all-MiniLM-L6-v2 for
real, each row one of those plus a little noise (embedding 100k captions takes 13 min
on this box); the index the flow builds past 100k rows
(IVF_HNSW_SQ, maintain_indexes). The queries: captions of the same grammar that the table
never held (another seed). Timed through a real uvicorn server over HTTP from this
process: `/api/search?q=...&k=20` (embedding the query included), with and without a
filter (`min_aesthetic=5`), p50/p95/p99 of `--queries`; then headless Chromium (Debian's,
through Playwright) loads `/` and the time until the first result cards are in the page
is measured, median of 5 loads.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

COLOURS = ["red", "orange", "golden", "green", "teal", "blue", "violet", "grey", "pale", "dark"]
SUBJECTS = ["a dog", "two cyclists", "a city street", "waves on rocks", "a kitchen", "a forest",
            "a market crowd", "a train", "a child with a kite", "snowy mountains", "a neon sign",
            "a cat on a sofa", "traffic at night", "a field of wheat", "a river bend"]  # fmt: skip
MOTIONS = ["pans slowly left", "zooms in", "stays still", "tracks forward", "tilts up",
           "shakes by hand", "circles around", "moves fast to the right"]  # fmt: skip
PLACES = ["at dawn", "under rain", "in bright noon light", "at dusk", "in fog", "indoors"]


def caption(rng: random.Random) -> str:
    return (f"A {rng.choice(COLOURS)} scene of {rng.choice(SUBJECTS)} {rng.choice(PLACES)}; "
            f"the camera {rng.choice(MOTIONS)}. {rng.choice(SUBJECTS).capitalize()} appears "
            f"{rng.choice(PLACES)}.")  # fmt: skip


def build_table(uri: str, rows: int, seed: int) -> None:
    import numpy as np

    from storage import schema
    from storage.lance_store import IndexPolicy, LanceStore
    from storage.schema import ClipRow
    from tasks.embed import load_embedder

    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    embedder = load_embedder("minilm")
    store = LanceStore(uri)
    started = time.perf_counter()
    pool = [caption(rng) for _ in range(min(rows, 10_000))]  # embedded for real, once
    pool_vectors = np.asarray(embedder.embed(pool), dtype=np.float32)
    for part in range(0, rows, 10_000):
        n = min(10_000, rows - part)
        pick = nprng.integers(0, len(pool), n)
        vectors = pool_vectors[pick] + nprng.normal(scale=0.02, size=(n, pool_vectors.shape[1]))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        batch = [
            ClipRow(clip_id=f"c{part + i:07d}", bucket="b", key=f"raw/{(part + i) // 4:06d}.mp4",
                    etag="e", source=f"s3://b/raw/{(part + i) // 4:06d}.mp4",
                    start_s=float((part + i) % 4) * 4, end_s=float((part + i) % 4) * 4 + 3.5,
                    duration_s=3.5, caption=pool[j], caption_model="describe",
                    aesthetic_score=float(rng.uniform(2, 9)), motion_score=rng.uniform(0, 0.3),
                    text_embedding=vectors[i].astype(np.float32).tolist())
            for i, j in enumerate(pick)
        ]  # fmt: skip
        store.write(schema.CLIPS_TABLE, batch, {"embedding_dim": embedder.dim, "image_dim": None})
    built = time.perf_counter() - started
    started = time.perf_counter()
    store.maintain_indexes(IndexPolicy(vector_index_min_rows=min(rows, 100_000)))
    print(f"table: {rows} clips embedded and written in {built:.0f} s; "
          f"indexes {time.perf_counter() - started:.0f} s")  # fmt: skip


def recall_at_10(uri: str, seed: int, queries: int = 100) -> None:
    """The shipped search tuning against an exact scan, on captions the table never held."""
    import numpy as np

    from storage.lance_store import LanceStore, SearchTuning
    from tasks.embed import load_embedder

    store = LanceStore(uri)
    table = store.open_table("clips")
    data = table.to_arrow().select(["clip_id", "text_embedding"])
    ids = data.column("clip_id").to_pylist()
    matrix = np.asarray(data.column("text_embedding").to_pylist(), dtype=np.float32)
    rng = random.Random(seed)
    vectors = load_embedder("minilm").embed([caption(rng) for _ in range(queries)])
    hits = 0
    for v in vectors:
        exact = {ids[i] for i in np.argsort(-(matrix @ v))[:10]}
        found = {h.clip_id for h in store.search(v.tolist(), 10)}
        hits += len(exact & found)
    tuning = SearchTuning.for_rows(len(ids))
    print(f"recall@10 {hits / (10 * queries):.3f} with the shipped tuning for {len(ids)} rows "
          f"(nprobes {tuning.nprobes}, ef {tuning.ef}, refine {tuning.refine_factor})")  # fmt: skip


def percentiles(ms: list[float]) -> str:
    ms = sorted(ms)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return f"p50 {pick(0.5):6.1f}  p95 {pick(0.95):6.1f}  p99 {pick(0.99):6.1f} ms"


def main() -> None:
    import shutil

    import uvicorn

    from flows.config import build_config
    from flows.web import create_app

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = str(Path(tmp) / "lance")
        build_table(uri, args.rows, args.seed)
        recall_at_10(uri, args.seed + 2000)
        config = build_config(overrides={"lance_uri": uri}, environ={})
        server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=8790,
                                               log_level="warning"))  # fmt: skip
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        base = "http://127.0.0.1:8790"
        rng = random.Random(args.seed + 1000)  # queries the table never held
        for label, extra in (("search", ""), ("search + min_aesthetic=5", "&min_aesthetic=5")):
            ms = []
            for i in range(args.queries + 5):
                q = urllib.parse.quote(caption(rng))
                started = time.perf_counter()
                with urllib.request.urlopen(f"{base}/api/search?q={q}&k=20{extra}") as r:
                    r.read()
                if i >= 5:  # warm-up
                    ms.append((time.perf_counter() - started) * 1000)
            print(f"{label:28s} {percentiles(ms)}")
        browser = shutil.which("chromium")
        if browser:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=browser, args=["--no-sandbox"])
                page = b.new_page()
                loads = []
                for _ in range(6):
                    started = time.perf_counter()
                    page.goto(base + "/")
                    page.wait_for_selector(".card")
                    loads.append((time.perf_counter() - started) * 1000)
                b.close()
            print(f"first page with result cards: median {statistics.median(loads[1:]):.0f} ms "
                  f"(first load {loads[0]:.0f} ms)")  # fmt: skip
        server.should_exit = True


if __name__ == "__main__":
    main()
