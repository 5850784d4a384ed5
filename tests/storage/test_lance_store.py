from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from storage import schema
from storage.lance_store import LanceStore
from storage.ledger import Ledger, Status
from storage.types import ObjectRef

DIM = 8


def row(clip_id: str, key: str, etag: str, vec: list[float], caption: str = "c") -> dict:
    return {
        "clip_id": clip_id,
        "bucket": "b",
        "key": key,
        "etag": etag,
        "source": f"s3://b/{key}",
        "start_s": 0.0,
        "end_s": 1.0,
        "caption": caption,
        "caption_model": "describe",
        "aesthetic_score": 5.0,
        "text_embedding": vec,
        "created_at": datetime.now(UTC),
    }


def unit(i: int) -> list[float]:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1
    return v.tolist()


def test_upsert_is_idempotent_and_dedupes_a_batch(tmp_path: Path) -> None:
    store = LanceStore(str(tmp_path / "db"))
    rows = [row("a", "k1", "e1", unit(0)), row("b", "k1", "e1", unit(1))]
    assert store.upsert_clips([*rows, row("a", "k1", "e1", unit(0), "newer")], DIM) == 2
    store.upsert_clips(rows, DIM)
    assert store.count(schema.CLIPS) == 2
    assert {r["clip_id"]: r["caption"] for r in store.rows(schema.CLIPS)} == {"a": "c", "b": "c"}


def test_delete_other_versions_handles_quotes_in_keys(tmp_path: Path) -> None:
    store = LanceStore(str(tmp_path / "db"))
    key = "it's a 'key'.mp4"
    store.upsert_clips(
        [
            row("old", key, "e1", unit(0)),
            row("new", key, "e2", unit(1)),
            row("other", "k2", "e1", unit(2)),
        ],
        DIM,
    )
    store.delete_other_versions("b", key, "e2")
    assert sorted(r["clip_id"] for r in store.rows(schema.CLIPS)) == ["new", "other"]


def test_search_ranks_by_cosine_and_filters(tmp_path: Path) -> None:
    store = LanceStore(str(tmp_path / "db"))
    store.upsert_clips([row(str(i), f"k{i}", "e", unit(i)) for i in range(4)], DIM)
    q = np.array(unit(2)) * 0.9 + np.array(unit(3)) * 0.1
    hits = store.search((q / np.linalg.norm(q)).tolist(), k=2)
    assert [h.clip_id for h in hits] == ["2", "3"]
    assert hits[0].score > hits[1].score
    assert hits[0].source == "s3://b/k2"
    filtered = store.search(unit(2), k=4, where="key != 'k2'")
    assert "2" not in [h.clip_id for h in filtered]


def test_ledger_skips_only_finished_versions(tmp_path: Path) -> None:
    ledger = Ledger(LanceStore(str(tmp_path / "db")))
    now = datetime.now(UTC)
    a, b, c = (ObjectRef("b", k, "e1", 1, now) for k in ("a.mp4", "b.mp4", "c.mp4"))
    ledger.record(a, Status.DONE, "r1", "v")
    ledger.record(b, Status.FAILED, "r1", "v")
    ledger.record(c, Status.QUARANTINED, "r1", "v")
    a2 = ObjectRef("b", "a.mp4", "e2", 1, now)  # a changed since
    todo, skipped = ledger.pending([a2, b, c])
    assert [o.key for o in todo] == ["a.mp4", "b.mp4"]
    assert [o.key for o in skipped] == ["c.mp4"]
    assert ledger.pending([a, c], reprocess=True) == ([a, c], [])
    ledger.record(a, Status.DONE, "r2", "v")  # one row per key, not one per run
    assert ledger.store.count(schema.LEDGER) == 3
