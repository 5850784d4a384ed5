"""Landing: finished objects become rows in every sink, then (only then) ledger entries.

A batch of finished VideoRecords is embedded (one call), gated (great-expectations, one
validation), written to each sink and recorded in the ledger. Sinks sit behind one
Protocol; today's is the LanceDB tables, where each object's clip set and quarantine set
are replaced in the same commit that writes the new rows, so an object that now yields
nothing, or other spans, or a refusal, leaves nothing stale behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.config import PIPELINE_VERSION, RunConfig
from flows.dedup import DuplicateCheck, apply_marks
from flows.rows import caption_version_row, clip_row, quarantine_row
from storage import schema
from storage.lance_store import LanceStore, Replace, objects_predicate, sql_str
from storage.ledger import Ledger, LedgerEntry, Status
from storage.records import ClipRecord, VideoRecord
from storage.schema import ClipRow, QuarantineRow
from storage.types import Rejection, RejectReason
from tasks.duplicates import DuplicatesConfig, Match
from tasks.embed import Embedder

log = logging.getLogger(__name__)


@dataclass
class LandingBatch:
    """What one landing writes: the finished objects and the rows read off them."""

    run_id: str
    videos: list[VideoRecord]  # landed or quarantined: their sets are replaced
    rows: list[ClipRow]
    quarantine: list[QuarantineRow]
    dims: dict[str, int | None]
    extra: tuple[pa.Field, ...] = ()  # the clip stages' own columns

    def objects(self) -> tuple[tuple[str, str], ...]:
        return tuple((v.obj.bucket, v.obj.key) for v in self.videos)


class Sink(Protocol):
    """An output of landing. Writes are idempotent: the same batch twice leaves the
    same state; `prune` removes everything of objects that left the bucket."""

    name: str

    def write(self, batch: LandingBatch) -> None: ...

    def prune(self, objects: Sequence[tuple[str, str]]) -> None: ...


def _chunks(items: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class LanceSink:
    """The clips, quarantine and caption_versions tables. With `duplicates` set (the
    stage is in the run's list), new rows are checked against the table before they are
    written, marked on the rows (so later sinks see the marks), and the table rows whose
    mark the batch changes are updated after (flows/dedup.py)."""

    name = "lancedb"

    def __init__(self, store: LanceStore, duplicates: DuplicatesConfig | None = None) -> None:
        self.store = store
        self.duplicates = duplicates if duplicates is not None and duplicates.enabled else None

    def write(self, batch: LandingBatch) -> None:
        objects = batch.objects()
        gone = self.store.clip_ids_of(objects) - {r.clip_id for r in batch.rows}
        check = DuplicateCheck(self.store, self.duplicates) if self.duplicates else None
        changed: dict[str, Match | None] = {}
        if check is not None:
            marks = check.mark(batch.rows, objects)
            apply_marks(batch.rows, marks)
            changed = marks.existing
        self.store.write(schema.QUARANTINE_TABLE, batch.quarantine, replace=Replace(objects))
        self.store.write(
            schema.CLIPS_TABLE, batch.rows, batch.dims, batch.extra, replace=Replace(objects)
        )
        records = [schema.CLIPS_TABLE.record(r) for r in batch.rows]
        self.store.write(schema.CAPTION_VERSIONS_TABLE, [caption_version_row(r) for r in records])
        self._forget_versions(gone)
        if check is not None:
            self._set_marks({**changed, **check.freed(gone)})

    def _set_marks(self, marks: dict[str, Match | None]) -> None:
        self.store.update_rows(
            schema.CLIPS_TABLE,
            {
                clip_id: {
                    "duplicate_of": m.of if m else None,
                    "duplicate_similarity": m.similarity if m else None,
                }
                for clip_id, m in marks.items()
            },
        )

    def prune(self, objects: Sequence[tuple[str, str]]) -> None:
        if not objects:
            return
        gone = self.store.clip_ids_of(objects)
        predicate = objects_predicate(objects)
        self.store.delete(schema.CLIPS, predicate)
        self.store.delete(schema.QUARANTINE, predicate)
        self._forget_versions(gone)
        if self.duplicates is not None:
            self._set_marks(DuplicateCheck(self.store, self.duplicates).freed(gone))

    def _forget_versions(self, clip_ids: set[str]) -> None:
        for part in _chunks(sorted(clip_ids)):
            ids = ", ".join(sql_str(i) for i in part)
            self.store.delete(schema.CAPTION_VERSIONS, f"clip_id IN ({ids})")


@dataclass
class Outcome:
    """One object's end in this run."""

    uri: str
    status: Status
    clips_landed: int = 0
    reasons: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class Landed:
    outcomes: list[Outcome]
    checks: dict[str, list[int]] = field(default_factory=dict)  # name -> [evaluated, failed]
    clips_gated: int = 0
    clips_failed_gate: int = 0
    duplicates: int = 0  # landed rows marked `duplicate_of`
    batch_error: str = ""
    metrics: list[dict[str, float]] = field(default_factory=list)  # per landed clip
    seconds: dict[str, float] = field(default_factory=dict)  # embed, gate, sinks


def refusals(video: VideoRecord) -> list[Rejection]:
    """Everything refused of an object: its own rejections, then each clip's."""
    return list(video.rejections) + [c.rejection for c in video.clips if c.rejection]


def captioned(video: VideoRecord) -> list[ClipRecord]:
    return [c for c in video.clips if c.alive and c.caption is not None]


def land_batch(
    videos: Sequence[VideoRecord],
    config: RunConfig,
    run_id: str,
    embedder: Embedder,
    sinks: Sequence[Sink],
    extra: tuple[pa.Field, ...] = (),
) -> Landed:
    """Embed, gate and write one batch of finished objects, then record them."""
    final = [v for v in videos if not v.failed]
    clips = [c for v in final for c in captioned(v)]
    landed = Landed([])
    started = time.perf_counter()
    vectors = embedder.embed([c.caption.text for c in clips if c.caption]) if clips else []
    for clip, vector in zip(clips, vectors, strict=True):
        clip.embedding = vector.tolist()
    rows = [clip_row(c, embedder.name, PIPELINE_VERSION, run_id) for c in clips]
    landed.seconds["embed"] = time.perf_counter() - started
    started = time.perf_counter()
    from quality.gate import BatchRejected  # great-expectations loads with the first batch

    try:
        rows = _gate(clips, rows, config, embedder.dim, landed)
    except BatchRejected as e:
        for v in final:
            v.failure = str(e)
        final, rows = [], []
        landed.batch_error = str(e)
    landed.seconds["gate"] = time.perf_counter() - started
    image_dim = next((len(r.image_embedding) for r in rows if r.image_embedding), None)
    batch = LandingBatch(
        run_id,
        final,
        rows,
        [quarantine_row(v.obj, r, PIPELINE_VERSION, run_id) for v in final for r in refusals(v)],
        {"embedding_dim": embedder.dim, "image_dim": image_dim},
        extra,
    )
    if final:
        for sink in sinks:
            sink.write(batch)
    landed.duplicates = sum(r.extra.get("duplicate_of") is not None for r in rows)  # as marked
    per_object: dict[tuple[str, str], int] = {}
    for r in rows:
        per_object[(r.bucket, r.key)] = per_object.get((r.bucket, r.key), 0) + 1
    entries = []
    for v in videos:
        n = per_object.get((v.obj.bucket, v.obj.key), 0)
        status = Status.FAILED if v.failed else Status.DONE if n else Status.QUARANTINED
        reasons = [str(r.reason) for r in refusals(v)] if not v.failed else []
        entries.append(LedgerEntry(v.obj, status, n, v.failure or ";".join(reasons)))
        landed.outcomes.append(Outcome(v.obj.uri, status, n, reasons, v.failure or ""))
    Ledger(sinks_store(sinks)).record_many(entries, run_id, PIPELINE_VERSION)
    landed.metrics = [_metrics(r) for r in rows]
    return landed


def sinks_store(sinks: Sequence[Sink]) -> LanceStore:
    """The store the ledger lives in: the LanceDB sink's."""
    for sink in sinks:
        if isinstance(sink, LanceSink):
            return sink.store
    raise ValueError("landing needs the LanceDB sink: the ledger lives beside its tables")


def _gate(
    clips: list[ClipRecord], rows: list[ClipRow], config: RunConfig, dim: int, landed: Landed
) -> list[ClipRow]:
    """The rows that pass the clips suite; failing clips are refused with the checks
    they broke. A batch-level failure lands nothing of the batch."""
    if not rows:
        return rows
    from quality.gate import gate_clips

    records = [schema.CLIPS_TABLE.record(r) for r in rows]
    gate = gate_clips(records, config.quality, dim, expected=len(clips))
    for name, n in gate.evaluated.items():
        landed.checks[name] = [n, gate.failures.get(name, 0)]
    failed = {r["clip_id"]: names for r, names in gate.failed}
    landed.clips_gated = len(rows)
    landed.clips_failed_gate = len(failed)
    keep = []
    for clip, row in zip(clips, rows, strict=True):
        if row.clip_id in failed:
            detail = "failed: " + ", ".join(failed[row.clip_id])
            span = (row.start_s, row.end_s)
            clip.reject(Rejection("quality", RejectReason.QUALITY_FAILED, detail, span))
        else:
            keep.append(row)
    return keep


STAGE_METRICS = ("motion_excursion", "keyframe_change", "text_area", "text_artificial_area")


def _metrics(row: ClipRow) -> dict[str, float]:
    metrics = {
        "aesthetic": float(row.aesthetic_score or 0.0),
        "motion": float(row.motion_score),
        "words": len(row.caption.split()),
        "caption_seconds": row.caption_seconds,
    }
    for name in STAGE_METRICS:  # the filter stages' scores, where they ran
        if row.extra.get(name) is not None:
            metrics[name] = float(row.extra[name])
    return metrics


@task(name="land-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def land_batch_task(
    videos: list[VideoRecord],
    config: RunConfig,
    run_id: str,
    embedder: Any,
    sinks: list[Any],
    extra: tuple[pa.Field, ...],
) -> Landed:
    return land_batch(videos, config, run_id, embedder, sinks, extra)


def prune_missing(
    sinks: Sequence[Sink], ledger: Ledger, objects: Sequence[tuple[str, str]]
) -> None:
    """Everything of objects that left the bucket, from every sink, then the ledger."""
    for sink in sinks:
        sink.prune(objects)
    ledger.forget(objects)
