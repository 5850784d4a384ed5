"""The ledger: which object versions are finished, so a run takes only new or changed ones.

One row per (bucket, key) holding the last ETag seen and its status. An object is skipped
when its listed ETag equals the ledger's and the status is final (`done` or
`quarantined`); a `failed` object (an infrastructure fault) is tried again. The status is
written only after the object's rows are committed, so a crash leaves it not-done and the
next run redoes it; upserts by deterministic id make the redo land exactly once. An object
gone from the bucket loses its row here last, after its clips (flows/landing.prune).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from storage import schema
from storage.lance_store import LanceStore, objects_predicate, sql_str
from storage.schema import LedgerRow
from storage.types import ObjectRef, stable_id


class Status(StrEnum):
    DONE = "done"
    QUARANTINED = "quarantined"
    FAILED = "failed"


FINAL = (Status.DONE, Status.QUARANTINED)


@dataclass(frozen=True)
class LedgerEntry:
    obj: ObjectRef
    status: Status
    clips: int = 0
    error: str = ""


def ledger_id(bucket: str, key: str) -> str:
    return stable_id("ledger", bucket, key)


class Ledger:
    def __init__(self, store: LanceStore) -> None:
        self.store = store

    def entries(self, bucket: str) -> dict[str, dict[str, object]]:
        """key -> ledger row, for every object of `bucket` the ledger knows."""
        return {r["key"]: r for r in self.store.rows(schema.LEDGER, f"bucket = {sql_str(bucket)}")}

    def finished_etags(self, bucket: str) -> dict[str, str]:
        """key -> ETag of every object in `bucket` whose last version is finished."""
        return {k: str(r["etag"]) for k, r in self.entries(bucket).items() if r["status"] in FINAL}

    def pending(
        self, objects: Iterable[ObjectRef], reprocess: bool = False
    ) -> tuple[list[ObjectRef], list[ObjectRef]]:
        """Split listed objects into (to do, skipped as already finished at this ETag)."""
        objects = list(objects)
        if reprocess or not objects:
            return objects, []
        finished: dict[str, dict[str, str]] = {}
        todo, skipped = [], []
        for obj in objects:
            if obj.bucket not in finished:
                finished[obj.bucket] = self.finished_etags(obj.bucket)
            if finished[obj.bucket].get(obj.key) == obj.etag:
                skipped.append(obj)
            else:
                todo.append(obj)
        return todo, skipped

    def record(
        self,
        obj: ObjectRef,
        status: Status,
        run_id: str,
        pipeline_version: str,
        clips: int = 0,
        error: str = "",
    ) -> None:
        self.record_many([LedgerEntry(obj, status, clips, error)], run_id, pipeline_version)

    def record_many(self, entries: Sequence[LedgerEntry], run_id: str, version: str) -> None:
        """Many objects' statuses in one upsert (one table commit)."""
        now = datetime.now(UTC)
        self.store.write(
            schema.LEDGER_TABLE,
            [
                LedgerRow(
                    ledger_id=ledger_id(e.obj.bucket, e.obj.key),
                    bucket=e.obj.bucket,
                    key=e.obj.key,
                    etag=e.obj.etag,
                    size=e.obj.size,
                    last_modified=e.obj.last_modified,
                    status=str(e.status),
                    clips=e.clips,
                    pipeline_version=version,
                    run_id=run_id,
                    error=e.error[:2000],
                    updated_at=now,
                )
                for e in entries
            ],
        )

    def forget(self, objects: Sequence[tuple[str, str]]) -> None:
        """Drop the rows of (bucket, key) objects that left the bucket."""
        if objects:
            self.store.delete(schema.LEDGER, objects_predicate(objects))
