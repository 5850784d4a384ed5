"""The LanceDB store: the tables of storage/schema.py, upserts, set replacement, search.

Writes are `merge_insert` upserts on each table's key, every batch deduplicated first
(Lance rejects a batch in which two source rows match one key). The key is the table's
unenforced primary key, which makes Lance detect two concurrent merges that insert the
same new key (lance #4585): the later one retries against the winner's commit instead of
committing a second copy. That holds for any number of processes on a local folder and on
object storage alike (tests/storage/test_concurrent_writers.py races processes against
SeaweedFS), and a killed writer holds nothing that others must wait out. Threads of one
process still take turns per table, so they do not spend commits conflicting.

`write(..., replace=...)` replaces whole sets in one commit: rows of the named objects that
the batch does not carry are deleted by the same merge that inserts the new ones, so a
reader sees the old clip set or the new one, never a mix, and never both.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import ceil
from typing import Any, TypeVar

import lancedb
import pyarrow as pa
from lancedb.index import FTS, IvfHnswSq

from storage import schema
from storage.lance_scratch import lance_scratch
from storage.schema import PRIMARY_KEY_META, SchemaMismatch, Table

log = logging.getLogger(__name__)

_WRITE_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
T = TypeVar("T")


@contextmanager
def _write_turn(uri: str, table: str) -> Iterator[None]:
    """Threads of this process write a table one at a time (correctness across processes
    comes from the primary key, not from here)."""
    with _LOCKS_GUARD:
        lock = _WRITE_LOCKS.setdefault((uri, table), threading.Lock())
    with lock:
        yield


def sql_str(value: str) -> str:
    """A SQL string literal for a LanceDB predicate; keys are data, so quotes are escaped."""
    return "'" + value.replace("'", "''") + "'"


def objects_predicate(objects: Sequence[tuple[str, str]]) -> str:
    """Rows of these (bucket, key) objects."""
    by_bucket: dict[str, list[str]] = {}
    for bucket, key in objects:
        by_bucket.setdefault(bucket, []).append(key)
    return " OR ".join(
        f"(bucket = {sql_str(b)} AND key IN ({', '.join(sql_str(k) for k in keys)}))"
        for b, keys in by_bucket.items()
    )


def is_retryable(error: Exception) -> bool:
    """A commit that lost a race it could not rebase: what Lance calls retryable, and the
    "incompatible" loser (an upsert after another writer's overwrite, as when two
    processes create one table at once). Every write here is idempotent, so redoing it on
    a fresh handle is always right."""
    text = str(error)
    return any(
        s in text
        for s in ("Retryable commit conflict", "CommitConflict", "Incompatible transaction")
    )


def with_retries(fn: Callable[[], T], attempts: int = 6, base_s: float = 0.2) -> T:
    """fn(), again on Lance's retryable commit conflicts, with jittered backoff."""
    for attempt in range(attempts):
        try:
            return fn()
        except (RuntimeError, OSError, ValueError) as e:
            if attempt == attempts - 1 or not is_retryable(e):
                raise
            time.sleep(base_s * 2**attempt * (0.5 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")


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
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # columns asked for

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return {**out, **self.extra}


@dataclass(frozen=True)
class Replace:
    """Replace these objects' rows: rows of them the batch does not carry are deleted."""

    objects: tuple[tuple[str, str], ...]  # (bucket, key)

    def predicate(self) -> str:
        return objects_predicate(self.objects)


class LanceStore:
    """One LanceDB database (a local folder or an `s3://` URI)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options
        self._db: Any = None
        self._pass_counts: dict[tuple[int, str], int] = {}  # (version, filter) -> rows

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

    # -- writes --------------------------------------------------------------------------

    def _table_for_write(self, spec: Table, target: pa.Schema) -> Any:
        """The table, created with its primary key, or brought up to `target`: missing
        columns are added (nulls for old rows), the primary key is set if an older
        capflow made the table without one. A column whose type cannot take the rows'
        values is an error that says what to do."""

        def open_or_create() -> Any:
            try:
                return self.db.open_table(spec.name)
            except ValueError as e:
                if "not found" not in str(e):
                    raise
            try:
                return self.db.create_table(spec.name, schema=target)
            except ValueError as e:  # another writer created it first
                if "already exists" not in str(e):
                    raise
                return self.db.open_table(spec.name)

        table = with_retries(open_or_create)
        have = table.schema
        missing = [f for f in target if f.name not in have.names]
        if missing:
            names = ", ".join(f.name for f in missing)
            log.info("schema evolution: adding column(s) %s to table %s", names, spec.name)
            with_retries(lambda: table.add_columns(missing))
        if PRIMARY_KEY_META not in (table.schema.field(spec.key).metadata or {}):
            with_retries(lambda: table.set_unenforced_primary_key(spec.key))
        have = table.schema if missing else have
        for f in target:
            current = have.field(f.name).type
            if current != f.type and not _castable(f.type, current):
                raise SchemaMismatch(
                    f"table {spec.name!r} column {f.name!r} is {current}, the rows have "
                    f"{f.type}: write to a new lance_uri (or drop the table) to change it"
                )
        return table

    def write(
        self,
        spec: Table,
        rows: Sequence[Any],
        dims: Mapping[str, int | None] | None = None,
        extra: Sequence[pa.Field] = (),
        replace: Replace | None = None,
    ) -> int:
        """Upsert `rows` (row dataclasses or mappings) by the table's key, in one commit;
        with `replace`, that commit also deletes the replaced objects' rows not in `rows`.
        Returns the number of distinct keys written."""
        records = {}
        for row in rows:
            record = spec.record(row)
            records[record[spec.key]] = record  # the last write of a key wins
        if not records and not (replace and replace.objects):
            return 0
        target = spec.schema(dims, extra)
        unknown = sorted({k for r in records.values() for k in r} - set(target.names))
        if unknown:
            raise SchemaMismatch(
                f"rows for table {spec.name!r} have column(s) {', '.join(unknown)} that its "
                "definition (storage/schema.py) lacks"
            )

        def merge() -> None:
            table = self._table_for_write(spec, target)  # a fresh handle on every attempt
            data = _arrow(list(records.values()), table.schema, spec.name)
            builder = (
                table.merge_insert(spec.key).when_matched_update_all().when_not_matched_insert_all()
            )
            if replace and replace.objects:
                builder = builder.when_not_matched_by_source_delete(replace.predicate())
            builder.execute(data)

        with _write_turn(self.uri, spec.name), lance_scratch():  # Lance spills the batch
            with_retries(merge)
        return len(records)

    def update_rows(self, spec: Table, values: Mapping[str, Mapping[str, Any]]) -> None:
        """Set some columns of existing rows, by key: one commit per row, for the few
        rows a landing changes after the fact (duplicate marks)."""
        if not values:
            return

        def update() -> None:
            table = self.open_table(spec.name)
            if table is None:
                return
            for key, row in sorted(values.items()):
                table.update(where=f"{spec.key} = {sql_str(key)}", values=dict(row))

        with _write_turn(self.uri, spec.name):
            with_retries(update)

    def delete(self, name: str, predicate: str) -> None:
        def delete() -> None:
            table = self.open_table(name)
            if table is not None:
                table.delete(predicate)

        with _write_turn(self.uri, name):
            with_retries(delete)

    # -- reads ---------------------------------------------------------------------------

    def count(self, name: str, predicate: str | None = None) -> int:
        table = self.open_table(name)
        if table is None:
            return 0
        return int(table.count_rows(predicate))

    def rows(
        self, name: str, predicate: str | None = None, columns: list[str] | None = None
    ) -> list[dict[str, Any]]:
        table = self.open_table(name)
        if table is None:
            return []
        query = table.search()
        if predicate:
            query = query.where(predicate)
        if columns:
            query = query.select(columns)
        return list(query.limit(None).to_list())

    # -- clips ---------------------------------------------------------------------------

    def upsert_clips(
        self, rows: Sequence[Any], embedding_dim: int, image_dim: int | None = None
    ) -> int:
        dims = {"embedding_dim": embedding_dim, "image_dim": image_dim}
        return self.write(schema.CLIPS_TABLE, rows, dims)

    def clip_ids_of(self, objects: Sequence[tuple[str, str]]) -> set[str]:
        """The clip ids that these (bucket, key) objects have in the table now."""
        return set(self.clips_of(objects, []))

    def clips_of(
        self, objects: Sequence[tuple[str, str]], columns: list[str]
    ) -> dict[str, dict[str, Any]]:
        """These (bucket, key) objects' clip rows in the table now, by clip id: the id and
        `columns`."""
        if not objects:
            return {}
        rows = self.rows(schema.CLIPS, objects_predicate(objects), ["clip_id", *columns])
        return {r["clip_id"]: r for r in rows}

    def delete_other_versions(self, bucket: str, key: str, keep_etag: str) -> None:
        """Drop clips of earlier versions of an object."""
        self.delete(
            schema.CLIPS,
            f"bucket = {sql_str(bucket)} AND key = {sql_str(key)} AND etag != {sql_str(keep_etag)}",
        )

    def upsert_caption_versions(self, rows: Sequence[Any]) -> int:
        return self.write(schema.CAPTION_VERSIONS_TABLE, rows)

    def clip(self, clip_id: str) -> dict[str, Any] | None:
        rows = self.rows(schema.CLIPS, f"clip_id = {sql_str(clip_id)}")
        return rows[0] if rows else None

    def upsert_quarantine(self, rows: Sequence[Any]) -> int:
        return self.write(schema.QUARANTINE_TABLE, rows)

    def search(
        self,
        query_vector: Sequence[float] | None = None,
        k: int = 10,
        where: str | None = None,
        text: str | None = None,
        column: str = "text_embedding",
        tuning: SearchTuning | None = None,
        include_duplicates: bool = False,
        columns: Sequence[str] = (),
    ) -> list[SearchHit]:
        """Clips ranked by cosine similarity of `column` to the query vector; with `text`
        as well, hybrid: vector and full-text rankings fused by reciprocal rank. Clips
        marked `duplicate_of` another are left out unless `include_duplicates`.

        A filter is applied after the vector search when most rows pass it (asking the
        index for enough more rows that k survive), and before it when few do: Lance's
        prefilter reads the filter's columns for the whole table on every query (about
        15 ms at a million rows, benchmarks/README.md), which a postfilter never does.
        How many rows pass is counted once per table version and filter."""
        table = self.open_table(schema.CLIPS)
        if table is None:
            return []
        have = set(table.schema.names)
        if not include_duplicates and "duplicate_of" in have:
            where = f"({where}) AND duplicate_of IS NULL" if where else "duplicate_of IS NULL"
        rows_now = table.count_rows()
        tuning = tuning or SearchTuning.for_rows(rows_now)
        extra = [c for c in columns if c in have and c not in HIT_COLUMNS]
        selected = [*HIT_COLUMNS, *extra]
        if text is not None:
            query = (
                table.search(query_type="hybrid", vector_column_name=column)
                .vector(list(query_vector))
                .text(text)
                if query_vector is not None
                else table.search(text, query_type="fts")
            )
            if where:
                query = query.where(where, prefilter=True)
            return [_hit(r, extra) for r in query.select(selected).limit(k).to_list()]

        def vector_query(limit: int, prefilter: bool) -> list[dict[str, Any]]:
            query = (
                table.search(list(query_vector or []), vector_column_name=column)
                .distance_type("cosine")
                .nprobes(tuning.nprobes)
                .ef(max(tuning.ef, limit * tuning.refine_factor))  # lance: ef >= its k
                .refine_factor(tuning.refine_factor)
            )
            if where:
                query = query.where(where, prefilter=prefilter)
            # _distance asked for, or lance warns on every query
            return query.select([*selected, "_distance"]).limit(limit).to_list()

        passing = self._passing_rows(table, where) if where else rows_now
        share = passing / max(1, rows_now)
        if share >= tuning.postfilter_min_share:
            limit = min(tuning.postfilter_max_rows, max(k, ceil(k * 1.5 / share) + 2))
            rows = vector_query(limit, prefilter=False)
            if len(rows) >= min(k, passing):  # else too few survived: filter first
                return [_hit(r, extra) for r in rows[:k]]
        return [_hit(r, extra) for r in vector_query(k, prefilter=True)]

    def _passing_rows(self, table: Any, where: str) -> int:
        """How many rows pass `where`, counted once per table version."""
        key = (table.version, where)
        if key not in self._pass_counts:
            if len(self._pass_counts) >= 256:
                self._pass_counts.clear()
            self._pass_counts[key] = int(table.count_rows(where))
        return self._pass_counts[key]

    # -- indexes -------------------------------------------------------------------------

    def index_names(self) -> list[str]:
        table = self.open_table(schema.CLIPS)
        return [] if table is None else [i.name for i in table.list_indices()]

    def maintain_indexes(self, policy: IndexPolicy) -> list[str]:
        """Create what is missing once the table is big enough, then fold new rows into
        existing indexes (`optimize`). Returns the names of indexes created now.

        Reads the indexes inside this process's write turn on a fresh handle, and redoes
        a step that lost a race to another writer (Lance calls that retryable): the
        other writer's new index is then simply there. Lance's scratch goes to a folder
        removed after (`lance_scratch`)."""
        with _write_turn(self.uri, schema.CLIPS), lance_scratch():
            return with_retries(lambda: self._maintain(policy))

    def _maintain(self, policy: IndexPolicy) -> list[str]:
        table = self.open_table(schema.CLIPS)
        if table is None:
            return []
        created = []
        existing = {i.columns[0]: i.name for i in table.list_indices()}
        rows = table.count_rows()
        if "caption" not in existing:
            table.create_index("caption", config=FTS())
            created.append("caption")
        vector_columns = [
            f.name
            for f in table.schema
            if pa.types.is_fixed_size_list(f.type) and f.name.endswith(("embedding", "fingerprint"))
        ]
        for column in vector_columns:
            if rows < policy.vector_index_min_rows:
                continue
            if column in existing:
                built, want = _partitions_of(table, existing[column]), partitions_for(rows)
                grown = want >= policy.rebuild_growth * built
                if not grown and built < 2 * policy.rebuild_growth * want:
                    continue  # optimize() below folds the new rows into it
                log.info("rebuilding the %s index: %d partitions, %d rows", column, built, rows)
            table.create_index(
                column,
                config=IvfHnswSq(distance_type="cosine", num_partitions=partitions_for(rows)),
                replace=True,
            )
            created.append(column)
        if existing:
            fold_new_rows(table, policy)
        return created


def fold_new_rows(table: Any, policy: IndexPolicy) -> None:
    """Make rows added since the last run searchable through the indexes, cheaply.

    Lance's `optimize()` merges new rows into the existing vector index, which rewrites
    it: 23-35 s for 1,000 new rows on a 100k table, as long as building it, and minutes
    at 1M. A delta index over the new rows alone takes 0.1-1 s; queries search the base
    and each delta. Deltas are merged with each other (never into the base) once there are more
    than `policy.max_deltas`, and the rebuild at `rebuild_growth` resets them. Small files
    are compacted and versions older than a week pruned, as `optimize()` does."""
    from datetime import timedelta

    dataset = table.to_lance()
    dataset.optimize.compact_files()
    dataset = table.to_lance()
    dataset.optimize.optimize_indices(num_indices_to_merge=0)
    for index in table.list_indices():
        deltas = dataset.stats.index_stats(index.name).get("num_indices", 1) - 1
        if deltas > policy.max_deltas:
            dataset.optimize.optimize_indices(num_indices_to_merge=deltas, index_names=[index.name])
    table.to_lance().cleanup_old_versions(older_than=timedelta(days=7))


def _partitions_of(table: Any, index: str) -> int:
    """How many IVF partitions a vector index was built with."""
    stats = table.to_lance().stats.index_stats(index)
    return int(stats["indices"][0].get("num_partitions", 1))


def _castable(want: pa.DataType, have: pa.DataType) -> bool:
    """Whether values of type `want` can be stored in a column of type `have`."""
    if pa.types.is_list(have) and pa.types.is_fixed_size_list(want):
        return want.value_type == have.value_type  # a sized vector into a plain list
    if pa.types.is_fixed_size_list(have) and pa.types.is_list(want):
        return want.value_type == have.value_type  # nulls, or lists of the right size
    numeric = (pa.types.is_integer, pa.types.is_floating)
    return any(f(want) and f(have) for f in numeric)


def _arrow(records: list[dict[str, Any]], table_schema: pa.Schema, name: str) -> pa.Table:
    """The batch in the table's own schema (columns the rows lack are null)."""
    try:
        return pa.Table.from_pylist(records, schema=table_schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaMismatch(f"rows for table {name!r} do not fit its schema: {e}") from e


HIT_COLUMNS = (
    "clip_id",
    "source",
    "start_s",
    "end_s",
    "caption",
    "aesthetic_score",
    "caption_model",
)


ROWS_PER_PARTITION = 65_536  # benchmarks/README.md, search.py: partitions of about this size
MAX_PROBES = 16


def partitions_for(rows: int) -> int:
    """IVF partitions for a table of this size. Few, large partitions, each an HNSW graph:
    on embeddings without cluster structure the nearest neighbours scatter over the IVF
    partitions, so probing most of a few beats a few of many (at 1M rows, 244 partitions
    and 32 probes reached recall@10 0.84; 16 partitions all probed 0.96 in a third of
    the time)."""
    return max(1, round(rows / ROWS_PER_PARTITION))


@dataclass(frozen=True)
class SearchTuning:
    """Query-time knobs of the vector index (a flat scan ignores the first three)."""

    nprobes: int = MAX_PROBES
    ef: int = 200
    refine_factor: int = 5
    postfilter_min_share: float = 0.3  # filter after the search when this share passes
    postfilter_max_rows: int = 200  # the most rows a postfiltered search asks for

    @classmethod
    def for_rows(cls, rows: int) -> SearchTuning:
        """Chosen from the table's size: every partition probed up to MAX_PROBES."""
        return cls(nprobes=min(MAX_PROBES, partitions_for(rows)))


@dataclass(frozen=True)
class IndexPolicy:
    vector_index_min_rows: int = 20_000  # a flat scan of 30k rows already takes 33 ms
    rebuild_growth: float = 2.0  # rebuild once the table needs this many times the partitions
    max_deltas: int = 8  # delta indexes (one per run that added rows) before they merge


def _hit(r: dict[str, Any], extra: Sequence[str] = ()) -> SearchHit:
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
        aesthetic_score=float(r["aesthetic_score"] or 0.0),
        caption_model=r["caption_model"],
        extra={c: r.get(c) for c in extra},
    )
