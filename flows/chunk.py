"""One chunk of objects through every stage: the work the curate flow fans out.

Per object in parallel: download -> probe -> transitions -> (sources gate) -> clips ->
keyframes -> aesthetic. Then, for the whole chunk at once: one batched captioning call
(wavefront batching across objects), one embedding call, one clips gate. Then per object:
land its rows and record it in the ledger, only after they commit.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows import progress
from flows.caching import caption_cache_key_fn, prepare_cache_key_fn, with_cache
from flows.config import PIPELINE_VERSION, RunConfig
from flows.rows import caption_version_row, clip_row, quarantine_row
from quality.gate import BatchRejected, GateResult, gate_clips, gate_sources
from storage.lance_store import LanceStore
from storage.ledger import Ledger, LedgerEntry, Status
from storage.s3 import download_object, make_client
from storage.types import (
    Caption,
    ObjectRef,
    ProbeInfo,
    Rejection,
    RejectReason,
    ScoredClip,
    Transition,
)
from tasks.aesthetic import aesthetic_task
from tasks.caption import caption_task
from tasks.clips import clips_task
from tasks.embed import embed_task, load_embedder
from tasks.keyframes import keyframes_task
from tasks.probe import probe_task
from tasks.transitions import ShotAnalysis, transitions_task

RETRY = {"retries": 2, "retry_delay_seconds": 2, "retry_jitter_factor": 0.5}
# One captioning call at a time per process: there is one model per process (loaded once),
# and threads of one process (a backfill's partitions) wait here rather than on a `gpu`
# slot, where a waiter sleeps for the server's Retry-After (minutes, seen in tests).
_CAPTION_LOCK = threading.Lock()


@dataclass
class ObjectOutcome:
    uri: str
    status: str  # "landed" | "quarantined" | "failed"
    clips_landed: int = 0
    reasons: list[str] = field(default_factory=list)
    error: str = ""


class StageClock:
    """Seconds spent per stage, summed: the run report's time per stage."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - started


@dataclass
class Prepared:
    """One object after the CPU stages: clips ready to caption, and what was set aside."""

    obj: ObjectRef
    probe: ProbeInfo | None = None
    transitions: list[Transition] = field(default_factory=list)
    clips_cut: int = 0  # clips out of the shots, before keyframes and the aesthetic filter
    scored: list[ScoredClip] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class ChunkResult:
    outcomes: list[ObjectOutcome | BaseException]
    gates: list[GateResult]
    batch_error: str = ""
    funnel: Counter[str] = field(default_factory=Counter)  # clips left after each stage
    seconds: Counter[str] = field(default_factory=Counter)  # summed per stage
    landed: list[dict[str, float]] = field(default_factory=list)  # per landed clip metrics


def _source_row(probe: ProbeInfo, analysis: ShotAnalysis) -> dict[str, Any]:
    return {
        "has_video_stream": True,
        "decoded_frames": len(analysis.times),
        "duration_s": probe.duration_s,
        "fps": probe.fps,
        "width": probe.display_size[0],
        "height": probe.display_size[1],
    }


def prepare_object(obj: ObjectRef, config: RunConfig) -> Prepared:
    """The per-object stages, up to clips ready for captioning.

    The stages run as plain calls (`task.fn`), not as task runs: one task run per object
    keeps Prefect's per-task cost (API calls, state changes) small next to the work.
    """
    clock = StageClock()
    prepared = _prepare(obj, config, clock)
    prepared.seconds = dict(clock.seconds)
    return prepared


def _prepare(obj: ObjectRef, config: RunConfig, clock: StageClock) -> Prepared:
    prepared = Prepared(obj)
    if obj.size == 0:  # nothing to download or decode
        prepared.rejected.append(Rejection("download", RejectReason.EMPTY_OBJECT, "zero bytes"))
        return prepared
    tmp_root = Path(config.workdir) / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        # A fixed local name: the key is data, never part of a path or a command.
        with clock.time("download"):
            local = download_object(make_client(config.s3.options()), obj, Path(tmp) / "input")
        if isinstance(local, Rejection):
            prepared.rejected.append(local)
            return prepared
        with clock.time("probe"):
            probe = probe_task.fn(local, config.probe)
        if isinstance(probe, Rejection):
            prepared.rejected.append(probe)
            return prepared
        prepared.probe = probe
        with clock.time("transitions"):
            analysis = transitions_task.fn(local, probe, config.transitions)
        if isinstance(analysis, Rejection):
            prepared.rejected.append(analysis)
            return prepared
        source_gate = gate_sources([_source_row(probe, analysis)], config.quality)
        prepared.gates.append(source_gate)
        if source_gate.failed:
            names = ", ".join(source_gate.failed[0][1])
            prepared.rejected.append(
                Rejection("quality", RejectReason.QUALITY_FAILED, f"failed: {names}")
            )
            return prepared
        prepared.transitions = analysis.transitions
        clips = clips_task.fn(analysis, config.clips)
        prepared.clips_cut = len(clips)
        if not clips:
            detail = f"no shot of at least {config.clips.min_clip_s} s after trimming"
            prepared.rejected.append(Rejection("clips", RejectReason.NO_CLIPS, detail))
        for clip in clips:
            with clock.time("keyframes"):
                keyframes = keyframes_task.fn(local, probe, clip, config.keyframes)
            if isinstance(keyframes, Rejection):
                prepared.rejected.append(keyframes)
                continue
            with clock.time("aesthetic"):
                result = aesthetic_task.fn(clip, keyframes, config.aesthetic)
            if isinstance(result, Rejection):
                prepared.rejected.append(result)
            else:
                prepared.scored.append(result)
    return prepared


@task(name="prepare-object", cache_policy=NO_CACHE, **RETRY)
def prepare_object_task(obj: ObjectRef, config: RunConfig) -> Prepared:
    return prepare_object(obj, config)


@dataclass
class ToLand:
    """One object's share of a chunk: the rows that passed, and what was set aside."""

    obj: ObjectRef
    rows: list[dict[str, Any]]
    rejected: list[Rejection]


def land_chunk(
    items: list[ToLand], config: RunConfig, run_id: str, embedding_dim: int
) -> list[ObjectOutcome]:
    """Write a chunk's rows, then (only then) record its objects in the ledger.

    One upsert per table for the whole chunk: each is a LanceDB commit, and commits, not
    rows, are what writes cost.
    """
    store = LanceStore(config.lance_uri, config.lance_storage_options())
    rows = [r for it in items for r in it.rows]
    q_of = [
        [quarantine_row(it.obj, r, PIPELINE_VERSION, run_id) for r in it.rejected] for it in items
    ]
    image_dim = len(rows[0]["image_embedding"]) if rows and rows[0]["image_embedding"] else None
    store.upsert_clips(rows, embedding_dim, image_dim)
    store.upsert_caption_versions([caption_version_row(r) for r in rows])
    store.upsert_quarantine([q for qs in q_of for q in qs])
    store.delete_superseded([(it.obj.bucket, it.obj.key, it.obj.etag) for it in items if it.rows])
    entries, outcomes = [], []
    for it, qs in zip(items, q_of, strict=True):
        reasons = [q["reason"] for q in qs]
        status = Status.DONE if it.rows else Status.QUARANTINED
        entries.append(LedgerEntry(it.obj, status, len(it.rows), ";".join(reasons)))
        outcome = "landed" if it.rows else "quarantined"
        outcomes.append(ObjectOutcome(it.obj.uri, outcome, len(it.rows), reasons))
    Ledger(store).record_many(entries, run_id, PIPELINE_VERSION)
    for o in outcomes:
        progress.emit("finished", f"{o.status} {o.uri}")
    return outcomes


@task(name="land-chunk", cache_policy=NO_CACHE, **RETRY)
def land_chunk_task(
    items: list[ToLand], config: RunConfig, run_id: str, embedding_dim: int
) -> list[ObjectOutcome]:
    return land_chunk(items, config, run_id, embedding_dim)


def _tagged(task_: Any, tag: str, limits: dict[str, int]) -> Any:
    """The task under its tag concurrency limit, when the run config sets that limit."""
    return task_.with_options(tags=[tag]) if tag in limits else task_


def _inside(transitions: list[Transition], start: float, end: float) -> int:
    return sum(1 for t in transitions if t.end_s >= start and t.start_s < end)


def curate_chunk(objects: list[ObjectRef], config: RunConfig, run_id: str) -> ChunkResult:
    clock = StageClock()
    limits = config.limits.as_tags()
    prepare = _tagged(with_cache(prepare_object_task, prepare_cache_key_fn, config), "cpu", limits)
    land = _tagged(land_chunk_task, "s3", limits)
    futures = [prepare.submit(obj, config) for obj in objects]
    prepared: list[Prepared | BaseException] = []
    for future in futures:
        try:
            prepared.append(future.result())
        except Exception as e:  # an infrastructure fault that outlived the retries
            prepared.append(e)
    ready = [p for p in prepared if isinstance(p, Prepared)]
    gates = [g for p in ready for g in p.gates]
    for p in ready:
        clock.seconds.update(p.seconds)
    funnel: Counter[str] = Counter(
        clips_cut=sum(p.clips_cut for p in ready), clips_scored=sum(len(p.scored) for p in ready)
    )

    # One captioning call and one embedding call for every clip of the chunk.
    all_clips = [c for p in ready for c in p.scored]
    with clock.time("caption"), _CAPTION_LOCK:
        caption = _tagged(with_cache(caption_task, caption_cache_key_fn, config), "gpu", limits)
        captions = caption(all_clips, config.caption) if all_clips else []
    embedder = load_embedder(config.embed.model, config.embed.device, config.embed.batch_size)
    rejected: dict[int, list[Rejection]] = {id(p): list(p.rejected) for p in ready}
    pending: list[tuple[Prepared, ScoredClip, Caption]] = []
    it = iter(captions)
    for p in ready:
        for clip in p.scored:
            cap = next(it)
            if isinstance(cap, Rejection):
                rejected[id(p)].append(cap)
            else:
                pending.append((p, clip, cap))
    funnel["clips_captioned"] = len(pending)
    with clock.time("embed"):
        texts = [c.text for _, _, c in pending]
        vectors = embed_task.fn(texts, config.embed) if pending else []
    rows_of: dict[int, list[dict[str, Any]]] = {id(p): [] for p in ready}
    all_rows = []
    for (p, clip, cap), vec in zip(pending, vectors, strict=True):
        assert p.probe is not None
        row = clip_row(
            p.obj, p.probe, clip, cap, vec.tolist(), embedder.name, PIPELINE_VERSION, run_id
        )
        row["transitions_inside"] = _inside(p.transitions, clip.span.start_s, clip.span.end_s)
        rows_of[id(p)].append(row)
        all_rows.append(row)

    try:
        with clock.time("gate"):
            gate = gate_clips(all_rows, config.quality, embedder.dim, expected=len(pending))
    except BatchRejected as e:
        error = str(e)
        outcomes = [BatchRejected(error) for _ in prepared]
        return ChunkResult(outcomes, gates, error, funnel, clock.seconds)  # type: ignore[arg-type]
    gates.append(gate)
    failed_ids = {row["clip_id"]: names for row, names in gate.failed}
    funnel["clips_passed_gate"] = len(all_rows) - len(failed_ids)
    items: list[ToLand] = []
    for p in ready:
        keep = [r for r in rows_of[id(p)] if r["clip_id"] not in failed_ids]
        for r in rows_of[id(p)]:
            if r["clip_id"] in failed_ids:
                detail = "failed: " + ", ".join(failed_ids[r["clip_id"]])
                span = (r["start_s"], r["end_s"])
                rejected[id(p)].append(
                    Rejection("quality", RejectReason.QUALITY_FAILED, detail, span)
                )
        items.append(ToLand(p.obj, keep, rejected[id(p)]))
    try:
        with clock.time("land"):
            landed_outcomes: list[ObjectOutcome | BaseException] = list(
                land(quote(items), config, run_id, embedder.dim)
            )
        landed = [_landed_metrics(r) for it in items for r in it.rows]
    except Exception as e:  # the store is down past the retries: the objects stay not-done
        landed_outcomes = [e for _ in items]
        landed = []
    it_landed = iter(landed_outcomes)
    outcomes = [p if isinstance(p, BaseException) else next(it_landed) for p in prepared]
    funnel["clips_landed"] = len(landed)
    return ChunkResult(outcomes, gates, "", funnel, clock.seconds, landed)


def _landed_metrics(row: dict[str, Any]) -> dict[str, float]:
    return {
        "aesthetic": row["aesthetic_score"],
        "motion": row["motion_score"],
        "words": len(row["caption"].split()),
        "caption_seconds": row["caption_seconds"],
    }
