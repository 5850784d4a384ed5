"""Caption search with the real all-MiniLM-L6-v2, on a local table and on S3 (SeaweedFS)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from storage import schema
from storage.lance_store import IndexPolicy, LanceStore
from storage.search import search_captions
from tasks.embed import load_embedder

CAPTIONS = {
    "dog": "A golden retriever runs along a sandy beach as waves roll onto the shore.",
    "city": "A city street at night, neon signs and car headlights reflecting on wet asphalt.",
    "chef": "A chef chops onions and stirs a sizzling pan in a busy restaurant kitchen.",
    "rare": "A quokka sits among rocks on an island, blinking at the camera.",
}
FILLER = [
    f"A {c} {t} in a {p}, filmed {h}."
    for c in ("red", "green", "blue", "white", "black", "yellow")
    for t in ("car drives", "bird flies", "person walks", "boat sails", "train passes")
    for p in ("park", "desert", "forest", "harbour", "tunnel", "stadium", "market")
    for h in ("at dawn", "from above")
]


def clip_rows(
    vectors: Any, scores: Any, captions: Any = None, ids: Any = None
) -> list[dict[str, Any]]:
    """Clip rows around these vectors (ids r0, r1, ... and placeholder captions unless given)."""
    ids = list(ids) if ids is not None else [f"r{i}" for i in range(len(vectors))]
    captions = list(captions) if captions is not None else [f"row {i}" for i in ids]
    return [
        {
            "clip_id": name,
            "bucket": "b",
            "key": f"videos/{name}.mp4",
            "etag": "e1",
            "source": f"s3://b/videos/{name}.mp4",
            "start_s": 0.5,
            "end_s": 4.5,
            "caption": caption,
            "caption_model": "describe",
            "aesthetic_score": float(score),
            "text_embedding": [float(x) for x in vec],
            "created_at": datetime.now(UTC),
        }
        for name, caption, vec, score in zip(ids, captions, vectors, scores, strict=True)
    ]


def rows_for(
    captions: dict[str, str], scores: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    names = list(captions)
    vectors = load_embedder("minilm").embed([captions[n] for n in names])
    score = [(scores or {}).get(n, 5.0) for n in names]
    return clip_rows(vectors, score, [captions[n] for n in names], names)


def search(store: LanceStore, text: str, **kw: Any) -> list[str]:
    return [h.clip_id for h in search_captions(text, load_embedder("minilm"), store, **kw)]


@pytest.fixture()
def store(tmp_path: Path) -> LanceStore:
    s = LanceStore(str(tmp_path / "db"))
    s.upsert_clips(rows_for(CAPTIONS, {"dog": 8.0, "city": 4.0, "chef": 6.0, "rare": 7.0}), 384)
    s.maintain_indexes(IndexPolicy())
    return s


def test_a_paraphrase_finds_the_right_clip_first(store: LanceStore) -> None:
    assert search(store, "a puppy by the sea")[0] == "dog"
    assert search(store, "nighttime downtown traffic lights")[0] == "city"
    assert search(store, "someone cooking food")[0] == "chef"


def test_a_filter_excludes_what_it_should(store: LanceStore) -> None:
    hits = search(store, "a puppy by the sea", where="aesthetic_score < 7")
    assert "dog" not in hits and set(hits) == {"city", "chef"}
    assert set(search(store, "anything", where="key LIKE 'videos/c%'")) == {"city", "chef"}


def test_hybrid_search_finds_an_exact_rare_word(store: LanceStore) -> None:
    assert store.index_names()  # the full-text index exists
    assert search(store, "quokka", hybrid=True)[0] == "rare"
    assert search(store, "quokka", hybrid=True, where="aesthetic_score > 7.5") == ["dog"]


def test_the_vector_index_appears_past_the_threshold_and_results_hold(tmp_path: Path) -> None:
    store = LanceStore(str(tmp_path / "db"))
    filler = {f"f{i}": text for i, text in enumerate(FILLER)}
    store.upsert_clips(rows_for({**CAPTIONS, **filler}), 384)
    assert len(FILLER) + len(CAPTIONS) == 424
    # Below the threshold: only the full-text index; search is an exact flat scan.
    assert store.maintain_indexes(IndexPolicy(vector_index_min_rows=425)) == ["caption"]
    queries = ["a puppy by the sea", "nighttime downtown traffic", "a white boat in a harbour"]
    before = [search(store, q, k=5) for q in queries]
    store.upsert_clips(rows_for({"late": "A late arrival: a cat sleeps on a windowsill."}), 384)
    created = store.maintain_indexes(IndexPolicy(vector_index_min_rows=425))  # now 425 rows
    assert created == ["text_embedding"]
    assert any(i for i in store.index_names() if "text_embedding" in i)
    after = [search(store, q, k=5) for q in queries]
    assert [b[0] for b in before] == [a[0] for a in after]
    overlap = sum(len(set(b) & set(a)) for b, a in zip(before, after, strict=True))
    assert overlap / (5 * len(queries)) >= 0.9
    assert search(store, "a cat asleep by a window")[0] == "late"  # new rows are found


def test_search_on_an_s3_table(local_s3: Any, s3_client: Any) -> None:
    from storage.s3 import ensure_bucket

    ensure_bucket(s3_client, "lance-tables")
    options = {
        "endpoint": local_s3.endpoint_url,
        "allow_http": "true",
        "region": "us-east-1",
        "virtual_hosted_style_request": "false",
    }
    store = LanceStore("s3://lance-tables/capflow", options)
    store.upsert_clips(rows_for(CAPTIONS), 384)
    store.upsert_clips(rows_for(CAPTIONS), 384)  # idempotent on S3 too
    store.maintain_indexes(IndexPolicy())
    reopened = LanceStore("s3://lance-tables/capflow", options)
    assert reopened.count(schema.CLIPS) == len(CAPTIONS)
    assert search(reopened, "a puppy by the sea")[0] == "dog"
    assert search(reopened, "quokka", hybrid=True)[0] == "rare"
    listed = s3_client.list_objects_v2(Bucket="lance-tables", Prefix="capflow/clips.lance/")
    assert listed.get("KeyCount", 0) > 0


@pytest.mark.parametrize("indexed", [False, True])
def test_filtered_search_returns_the_true_top_k_whether_few_or_most_rows_pass(
    tmp_path: Path, indexed: bool
) -> None:
    """Most rows pass `aesthetic_score < 9`, but none near the query: a search that filters
    after the vector search would find too few, and must fall back to filtering first."""
    import numpy as np

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(600, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[0]
    near = vectors @ query > 0.3  # the query's neighbourhood scores high: filtered out
    scores = np.where(near, 9.5, rng.uniform(0, 8.9, 600))
    store = LanceStore(str(tmp_path / "db"))
    store.upsert_clips(clip_rows(vectors, scores), 16)
    if indexed:
        store.maintain_indexes(IndexPolicy(vector_index_min_rows=0))
    for where, keep in (("aesthetic_score < 9", scores < 9), ("aesthetic_score > 9", scores > 9)):
        sims = np.where(keep, vectors @ query, -np.inf)
        want = {f"r{i}" for i in np.argsort(-sims)[:10]}
        hits = store.search(query.tolist(), k=10, where=where)
        assert len(hits) == 10 and all(keep[int(h.clip_id[1:])] for h in hits)
        assert len({h.clip_id for h in hits} & want) >= 9


def test_the_vector_index_is_rebuilt_once_the_table_outgrows_its_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from storage import lance_store

    monkeypatch.setattr(lance_store, "ROWS_PER_PARTITION", 100)
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(700, 16)).astype(np.float32)
    store = LanceStore(str(tmp_path / "db"))
    policy = IndexPolicy(vector_index_min_rows=0)
    store.upsert_clips(clip_rows(vectors[:300], np.zeros(300)), 16)
    assert "text_embedding" in store.maintain_indexes(policy)
    table = store.open_table(schema.CLIPS)
    assert lance_store._partitions_of(table, "text_embedding_idx") == 3
    more = clip_rows(vectors[300:], np.zeros(400), ids=[f"s{i}" for i in range(400)])
    store.upsert_clips(more[:200], 16)  # 500 rows: folded into the index
    assert store.maintain_indexes(policy) == []
    assert lance_store._partitions_of(store.open_table(schema.CLIPS), "text_embedding_idx") == 3
    store.upsert_clips(more[200:], 16)  # 700 rows want 7 partitions: rebuilt
    assert store.maintain_indexes(policy) == ["text_embedding"]
    assert lance_store._partitions_of(store.open_table(schema.CLIPS), "text_embedding_idx") == 7
    hit = store.search(vectors[650].tolist(), k=1)[0]
    assert hit.clip_id == "s350"  # a row of the last run, found through the new index


def test_each_run_folds_its_rows_into_a_delta_index_and_deltas_merge(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(600, 16)).astype(np.float32)
    store = LanceStore(str(tmp_path / "db"))
    policy = IndexPolicy(vector_index_min_rows=0, max_deltas=2)
    rows = clip_rows(vectors, np.zeros(600))
    store.upsert_clips(rows[:300], 16)
    store.maintain_indexes(policy)

    def segments() -> int:
        table = store.open_table(schema.CLIPS)
        [name] = [i.name for i in table.list_indices() if i.columns[0] == "text_embedding"]
        return int(table.to_lance().stats.index_stats(name)["num_indices"])

    counts = []
    for run in range(3):
        store.upsert_clips(rows[300 + 100 * run : 400 + 100 * run], 16)
        assert store.maintain_indexes(policy) == []  # no rebuild: 600 rows, one partition
        counts.append(segments())
        table = store.open_table(schema.CLIPS)
        stats = table.index_stats("text_embedding_idx")
        assert stats.num_unindexed_rows == 0  # every run's rows are in an index
        newest = 350 + 100 * run
        assert store.search(vectors[newest].tolist(), k=1)[0].clip_id == f"r{newest}"
    assert counts == [2, 3, 2]  # a delta per run; past two, the deltas merge into one
