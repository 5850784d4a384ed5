"""The LanceDB store: clips, quarantine and ledger tables, upserts and similarity search.

Writes are `merge_insert` upserts on a deterministic id, each batch deduplicated first:
Lance rejects (or, in older versions, mis-handles) a batch in which two source rows match
one key, and two concurrent merges that both insert the same new key can both commit
(lance #4585, lancedb #3377), so a table has one writer at a time: a thread lock within a
process and, for a local database, an advisory file lock across processes (two backfills
at once on one box). On object storage there is no file to lock; there the deployments'
concurrency limit keeps one run writing at a time (flows/deployments.py).
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa
from lancedb.index import FTS, IvfHnswSq

from storage import schema

_WRITE_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


LOCK_DIR = ".capflow-locks"  # inside a local database folder; LanceDB ignores it


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


@contextmanager
def _write_lock(uri: str, table: str) -> Iterator[None]:
    """The one writer of `table`: threads of this process, then processes on this box."""
    with _LOCKS_GUARD:
        thread_lock = _WRITE_LOCKS.setdefault((uri, table), threading.Lock())
    with thread_lock:
        if not _is_local(uri):
            yield
            return
        folder = Path(uri.removeprefix("file://")) / LOCK_DIR
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{table}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes, or on death
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def sql_str(value: str) -> str:
    """A SQL string literal for a LanceDB predicate; keys are data, so quotes are escaped."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class SearchHit:
    clip_id: str
    source: str
    start_s: float
    end_s: float
    score: float
    caption: str
    aesthetic_score: float
    caption_model: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LanceStore:
    """One LanceDB database (a local folder or an `s3://` URI)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options
        self._db: Any = None

    @property
    def db(self) -> Any:
        if self._db is None:
            self._db = lancedb.connect(self.uri, storage_options=self.storage_options)
        return self._db

    def table_names(self) -> list[str]:
        return list(self.db.list_tables().tables)

    def open_table(self, name: str) -> Any | None:
        if name not in self.table_names():
            return None
        return self.db.open_table(name)

    def _table_for_write(self, name: str, table_schema: pa.Schema) -> Any:
        return self.db.create_table(name, schema=table_schema, exist_ok=True)

    def upsert(
        self, name: str, table_schema: pa.Schema, key: str, rows: Sequence[dict[str, Any]]
    ) -> int:
        """Insert or update rows by `key`; returns the number of distinct keys written."""
        if not rows:
            return 0
        unique = list({r[key]: r for r in rows}.values())  # last write of a key wins
        with _write_lock(self.uri, name):
            table = self._table_for_write(name, table_schema)
            # The table's own schema rules: it was fixed by the run that created it.
            data = pa.Table.from_pylist(unique, schema=table.schema)
            (
                table.merge_insert(key)
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(data)
            )
        return len(unique)

    def delete(self, name: str, predicate: str) -> None:
        table = self.open_table(name)
        if table is None:
            return
        with _write_lock(self.uri, name):
            table.delete(predicate)

    def count(self, name: str, predicate: str | None = None) -> int:
        table = self.open_table(name)
        if table is None:
            return 0
        return int(table.count_rows(predicate))

    def rows(self, name: str, predicate: str | None = None) -> list[dict[str, Any]]:
        table = self.open_table(name)
        if table is None:
            return []
        query = table.search()
        if predicate:
            query = query.where(predicate)
        return list(query.limit(None).to_list())

    # -- clips ---------------------------------------------------------------------------

    def upsert_clips(
        self, rows: Sequence[dict[str, Any]], embedding_dim: int, image_dim: int | None = None
    ) -> int:
        table_schema = schema.clips_schema(embedding_dim, image_dim)
        return self.upsert(schema.CLIPS, table_schema, "clip_id", rows)

    def delete_other_versions(self, bucket: str, key: str, keep_etag: str) -> None:
        """Drop clips of earlier versions of an object once the new version has landed."""
        self.delete_superseded([(bucket, key, keep_etag)])

    def delete_superseded(self, current: Sequence[tuple[str, str, str]]) -> None:
        """delete_other_versions for many (bucket, key, current ETag) at once: one commit."""
        if not current:
            return
        self.delete(
            schema.CLIPS,
            " OR ".join(
                f"(bucket = {sql_str(b)} AND key = {sql_str(k)} AND etag != {sql_str(e)})"
                for b, k, e in current
            ),
        )

    def upsert_caption_versions(self, rows: Sequence[dict[str, Any]]) -> int:
        return self.upsert(
            schema.CAPTION_VERSIONS, schema.CAPTION_VERSIONS_SCHEMA, "version_id", rows
        )

    def clip(self, clip_id: str) -> dict[str, Any] | None:
        rows = self.rows(schema.CLIPS, f"clip_id = {sql_str(clip_id)}")
        return rows[0] if rows else None

    def upsert_quarantine(self, rows: Sequence[dict[str, Any]]) -> int:
        return self.upsert(schema.QUARANTINE, schema.QUARANTINE_SCHEMA, "quarantine_id", rows)

    def search(
        self,
        query_vector: Sequence[float] | None = None,
        k: int = 10,
        where: str | None = None,
        text: str | None = None,
        column: str = "text_embedding",
        tuning: SearchTuning | None = None,
    ) -> list[SearchHit]:
        """Clips ranked by cosine similarity of `column` to the query vector; with `text`
        as well, hybrid: vector and full-text rankings fused by reciprocal rank."""
        table = self.open_table(schema.CLIPS)
        if table is None:
            return []
        tuning = tuning or SearchTuning()
        if text is not None and query_vector is not None:
            query = (
                table.search(query_type="hybrid", vector_column_name=column)
                .vector(list(query_vector))
                .text(text)
            )
        elif text is not None:
            query = table.search(text, query_type="fts")
        else:
            query = (
                table.search(list(query_vector or []), vector_column_name=column)
                .distance_type("cosine")
                .nprobes(tuning.nprobes)
                .ef(tuning.ef)
                .refine_factor(tuning.refine_factor)
            )
        columns = list(HIT_COLUMNS)
        if text is None:
            columns.append("_distance")  # asked for, or lance warns on every query
        if where:
            query = query.where(where, prefilter=True)
        rows = query.select(columns).limit(k).to_list()
        return [_hit(r) for r in rows]

    # -- indexes -------------------------------------------------------------------------

    def index_names(self) -> list[str]:
        table = self.open_table(schema.CLIPS)
        return [] if table is None else [i.name for i in table.list_indices()]

    def maintain_indexes(self, policy: IndexPolicy) -> list[str]:
        """Create what is missing once the table is big enough, then fold new rows into
        existing indexes (`optimize`). Returns the names of indexes created now."""
        table = self.open_table(schema.CLIPS)
        if table is None:
            return []
        created = []
        existing = {i.columns[0] for i in table.list_indices()}
        rows = table.count_rows()
        with _write_lock(self.uri, schema.CLIPS):
            if "caption" not in existing:
                table.create_index("caption", config=FTS())
                created.append("caption")
            vector_columns = [
                f.name
                for f in table.schema
                if pa.types.is_fixed_size_list(f.type) and f.name.endswith("embedding")
            ]
            for column in vector_columns:
                if column in existing or rows < policy.vector_index_min_rows:
                    continue
                partitions = max(1, rows // policy.rows_per_partition)
                table.create_index(
                    column, config=IvfHnswSq(distance_type="cosine", num_partitions=partitions)
                )
                created.append(column)
            if existing:
                table.optimize()
        return created


HIT_COLUMNS = (
    "clip_id",
    "source",
    "start_s",
    "end_s",
    "caption",
    "aesthetic_score",
    "caption_model",
)


@dataclass(frozen=True)
class SearchTuning:
    """Query-time knobs of the vector index (ignored by a flat scan)."""

    nprobes: int = 32
    ef: int = 200
    refine_factor: int = 5


@dataclass(frozen=True)
class IndexPolicy:
    vector_index_min_rows: int = 100_000  # below this a flat scan is exact and fast enough
    rows_per_partition: int = 4096


def _hit(r: dict[str, Any]) -> SearchHit:
    if "_distance" in r:
        score = 1.0 - float(r["_distance"])  # cosine similarity
    else:
        score = float(r.get("_relevance_score", r.get("_score", 0.0)))
    return SearchHit(
        clip_id=r["clip_id"],
        source=r["source"],
        start_s=float(r["start_s"]),
        end_s=float(r["end_s"]),
        score=round(score, 6),
        caption=r["caption"],
        aesthetic_score=float(r["aesthetic_score"]),
        caption_model=r["caption_model"],
    )
