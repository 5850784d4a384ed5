"""The ledger: which object versions are finished, so a run takes only new or changed ones.

One row per (bucket, key) holding the last ETag seen and its status. An object is skipped
when its listed ETag equals the ledger's and the status is final (`done` or
`quarantined`); a `failed` object (an infrastructure fault) is tried again. The status is
written only after the object's rows are committed, so a crash leaves it not-done and the
next run redoes it; upserts by deterministic id make the redo land exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum

from storage import schema
from storage.lance_store import LanceStore, sql_str
from storage.types import ObjectRef, stable_id


class Status(StrEnum):
    DONE = "done"
    QUARANTINED = "quarantined"
    FAILED = "failed"


FINAL = (Status.DONE, Status.QUARANTINED)


def ledger_id(bucket: str, key: str) -> str:
    return stable_id("ledger", bucket, key)


class Ledger:
    def __init__(self, store: LanceStore) -> None:
        self.store = store

    def finished_etags(self, bucket: str) -> dict[str, str]:
        """key -> ETag of every object in `bucket` whose last version is finished."""
        rows = self.store.rows(schema.LEDGER, f"bucket = {sql_str(bucket)}")
        return {r["key"]: r["etag"] for r in rows if r["status"] in FINAL}

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
        self.store.upsert(
            schema.LEDGER,
            schema.LEDGER_SCHEMA,
            "ledger_id",
            [
                {
                    "ledger_id": ledger_id(obj.bucket, obj.key),
                    "bucket": obj.bucket,
                    "key": obj.key,
                    "etag": obj.etag,
                    "size": obj.size,
                    "last_modified": obj.last_modified,
                    "status": str(status),
                    "clips": clips,
                    "pipeline_version": pipeline_version,
                    "run_id": run_id,
                    "error": error,
                    "updated_at": datetime.now(UTC),
                }
            ],
        )
