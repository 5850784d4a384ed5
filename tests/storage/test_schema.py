"""One definition per table: the Arrow schema comes from the row dataclass, a column the
table lacks is added by an explicit evolution step, and a column nobody defined is an
error, never a silent drop."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from storage import schema
from storage.lance_store import LanceStore
from storage.schema import PRIMARY_KEY_META, ClipRow, SchemaMismatch

DIM = 4


def clip(clip_id: str, **extra: object) -> ClipRow:
    return ClipRow(clip_id=clip_id, bucket="b", key="k", etag="e", caption="a caption",
                   text_embedding=[0.5] * DIM, extra=dict(extra))  # fmt: skip


def test_the_schema_comes_from_the_row_definition() -> None:
    arrow = schema.clips_schema(384, 32)
    assert arrow.names[:4] == ["clip_id", "bucket", "key", "etag"]
    assert arrow.field("text_embedding").type == pa.list_(pa.float32(), 384)
    assert arrow.field("image_embedding").type == pa.list_(pa.float32(), 32)
    assert schema.clips_schema(384).field("image_embedding").type == pa.list_(pa.float32())
    assert arrow.field("clip_id").metadata == {PRIMARY_KEY_META: b"1"}  # the table's key
    assert not arrow.field("clip_id").nullable
    assert set(arrow.names) == {n for n, _ in schema.CLIPS_TABLE.columns()}


def test_a_new_stage_column_is_added_to_an_existing_table(tmp_path: Path) -> None:
    store = LanceStore(str(tmp_path / "db"))
    store.upsert_clips([clip("old")], DIM)  # the table, as an earlier run made it
    assert "text_overlay_share" not in store.open_table(schema.CLIPS).schema.names
    extra = (pa.field("text_overlay_share", pa.float32()),)
    dims = {"embedding_dim": DIM, "image_dim": None}
    store.write(schema.CLIPS_TABLE, [clip("new", text_overlay_share=0.25)], dims, extra)
    rows = {r["clip_id"]: r for r in store.rows(schema.CLIPS)}
    assert rows["new"]["text_overlay_share"] == pytest.approx(0.25)  # kept, not dropped
    assert rows["old"]["text_overlay_share"] is None  # old rows: null, not rewritten


def test_a_column_nobody_defined_is_an_error(tmp_path: Path) -> None:
    store = LanceStore(str(tmp_path / "db"))
    with pytest.raises(SchemaMismatch, match="typo_score"):
        store.upsert_clips([clip("a", typo_score=1.0)], DIM)  # no stage declared it
    with pytest.raises(SchemaMismatch, match="aesthetc_score"):
        store.upsert_clips([{"clip_id": "b", "bucket": "b", "key": "k", "etag": "e",
                             "aesthetc_score": 5.0}], DIM)  # fmt: skip


def test_a_column_of_another_type_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    store = LanceStore(str(tmp_path / "db"))
    store.upsert_clips([clip("a")], DIM)
    with pytest.raises(SchemaMismatch, match="new lance_uri"):
        store.upsert_clips([ClipRow(clip_id="b", bucket="b", key="k", etag="e",
                                    text_embedding=[0.1] * 8)], 8)  # fmt: skip


def test_a_table_from_before_primary_keys_gets_one(tmp_path: Path) -> None:
    import lancedb

    db = lancedb.connect(str(tmp_path / "db"))
    plain = pa.schema([f.remove_metadata() for f in schema.QUARANTINE_TABLE.schema()])
    db.create_table(schema.QUARANTINE, schema=plain)  # as capflow 0.2 made it
    store = LanceStore(str(tmp_path / "db"))
    store.upsert_quarantine([{"quarantine_id": "q", "bucket": "b", "key": "k", "etag": "e"}])
    key = store.open_table(schema.QUARANTINE).schema.field("quarantine_id")
    assert PRIMARY_KEY_META in (key.metadata or {})
