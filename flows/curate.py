"""The `curate` flow: new or changed objects under a prefix become landed, searchable clips.

Objects (one S3 object at one ETag is the unit of work) go in chunks: per object in
parallel download -> probe -> transitions -> clips -> keyframes -> aesthetic; then one
captioning call over all clips of the chunk (batched across objects); then per object
embed -> gate -> land, and the ledger records it only after its rows commit. Bad media
becomes quarantine rows and the run goes on; only infrastructure faults raise, and
Prefect retries them.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from flows import progress
from flows.config import PIPELINE_VERSION, RunConfig
from flows.limits import ensure_tag_limits
from flows.rows import caption_version_row, clip_row, quarantine_row
from quality.gate import BatchRejected, run_gate
from storage.lance_store import LanceStore
from storage.ledger import Ledger, Status
from storage.s3 import download_object, list_videos, make_client
from storage.types import Caption, ObjectRef, ProbeInfo, Rejection, RejectReason, ScoredClip
from tasks.aesthetic import aesthetic_task
from tasks.caption import caption_task
from tasks.clips import clips_task
from tasks.embed import embed_task, load_embedder
from tasks.keyframes import keyframes_task
from tasks.probe import probe_task
from tasks.transitions import transitions_task


@dataclass
class ObjectOutcome:
    uri: str
    status: str  # "landed" | "quarantined" | "failed"
    clips_landed: int = 0
    reasons: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class RunReport:
    run_id: str
    seen: int = 0
    landed: int = 0
    quarantined: int = 0
    skipped: int = 0
    failed: int = 0
    clips_landed: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def reconciles(self) -> bool:
        return self.seen == self.landed + self.quarantined + self.skipped + self.failed


@dataclass
class Prepared:
    """One object after the CPU stages: clips ready to caption, and what was set aside."""

    obj: ObjectRef
    probe: ProbeInfo | None = None
    scored: list[ScoredClip] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def prepare_object(obj: ObjectRef, config: RunConfig) -> Prepared:
    """Download, probe, find shots, cut clips, pick keyframes, score: the per-object stages."""
    prepared = Prepared(obj)
    tmp_root = Path(config.workdir) / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        local = download_object(make_client(config.s3.options()), obj, Path(tmp) / "input")
        if isinstance(local, Rejection):
            prepared.rejected.append(local)
            return prepared
        probe = probe_task(local, config.probe)
        if isinstance(probe, Rejection):
            prepared.rejected.append(probe)
            return prepared
        prepared.probe = probe
        analysis = transitions_task(local, probe, config.transitions)
        if isinstance(analysis, Rejection):
            prepared.rejected.append(analysis)
            return prepared
        clips = clips_task(analysis, config.clips)
        if not clips:
            detail = f"no shot of at least {config.clips.min_clip_s} s after trimming"
            prepared.rejected.append(Rejection("clips", RejectReason.NO_CLIPS, detail))
        for clip in clips:
            keyframes = keyframes_task(local, probe, clip, config.keyframes)
            result = (
                keyframes
                if isinstance(keyframes, Rejection)
                else aesthetic_task(clip, keyframes, config.aesthetic)
            )
            if isinstance(result, Rejection):
                prepared.rejected.append(result)
            else:
                prepared.scored.append(result)
    return prepared


@task(
    name="prepare-object",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_jitter_factor=0.5,
)
def prepare_object_task(obj: ObjectRef, config: RunConfig) -> Prepared:
    return prepare_object(obj, config)


def land_object(
    prepared: Prepared, captions: list[Caption | Rejection], config: RunConfig, run_id: str
) -> ObjectOutcome:
    """Embed, gate and land one object's clips; record it in the ledger after the commit."""
    obj = prepared.obj
    store = LanceStore(config.lance_uri, config.lance_storage_options())
    embedder = load_embedder(config.embed.model, config.embed.device, config.embed.batch_size)
    rejected = list(prepared.rejected)
    captioned = []
    for clip, cap in zip(prepared.scored, captions, strict=True):
        if isinstance(cap, Rejection):
            rejected.append(cap)
        else:
            captioned.append((clip, cap))
    vectors = embed_task([cap.text for _, cap in captioned], config.embed)
    rows = [
        clip_row(
            obj, prepared.probe, clip, cap, vec.tolist(), embedder.name, PIPELINE_VERSION, run_id
        )
        for (clip, cap), vec in zip(captioned, vectors, strict=True)
        if prepared.probe is not None
    ]
    try:
        gate = run_gate(rows, config.quality, embedder.dim)
        landing = gate.passed
        for row, names in gate.failed:
            detail = "failed: " + ", ".join(names)
            span = (row["start_s"], row["end_s"])
            rejected.append(Rejection("quality", RejectReason.QUALITY_FAILED, detail, span))
    except BatchRejected as e:
        landing = []
        rejected.append(Rejection("quality", RejectReason.QUALITY_FAILED, str(e)))
    q_rows = [quarantine_row(obj, r, PIPELINE_VERSION, run_id) for r in rejected]
    store.upsert_clips(landing, embedder.dim)
    store.upsert_caption_versions([caption_version_row(r) for r in landing])
    store.upsert_quarantine(q_rows)
    if landing:
        store.delete_other_versions(obj.bucket, obj.key, obj.etag)
    status = Status.DONE if landing else Status.QUARANTINED
    reasons = [r["reason"] for r in q_rows]
    Ledger(store).record(
        obj, status, run_id, PIPELINE_VERSION, clips=len(landing), error=";".join(reasons)
    )
    outcome = "landed" if landing else "quarantined"
    progress.emit("finished", f"{outcome} {obj.uri}")
    return ObjectOutcome(obj.uri, outcome, len(landing), reasons)


@task(name="land-object", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def land_object_task(
    prepared: Prepared, captions: list[Caption | Rejection], config: RunConfig, run_id: str
) -> ObjectOutcome:
    return land_object(prepared, captions, config, run_id)


def curate_chunk(
    objects: list[ObjectRef], config: RunConfig, run_id: str
) -> list[ObjectOutcome | BaseException]:
    """CPU stages per object in parallel, one batched captioning call over every clip of
    the chunk (wavefront batching across objects), then embed, gate and land per object."""
    futures = [prepare_object_task.submit(obj, config) for obj in objects]
    prepared: list[Prepared | BaseException] = []
    for future in futures:
        try:
            prepared.append(future.result())
        except Exception as e:  # an infrastructure fault that outlived the retries
            prepared.append(e)
    ready = [p for p in prepared if isinstance(p, Prepared)]
    all_clips = [c for p in ready for c in p.scored]
    captions = caption_task(all_clips, config.caption) if all_clips else []
    outcomes: list[ObjectOutcome | BaseException] = []
    offset = 0
    for p in prepared:
        if isinstance(p, BaseException):
            outcomes.append(p)
            continue
        mine = captions[offset : offset + len(p.scored)]
        offset += len(p.scored)
        try:
            outcomes.append(land_object_task(p, mine, config, run_id))
        except Exception as e:
            outcomes.append(e)
    return outcomes


def _report_markdown(report: RunReport) -> str:
    lines = [
        f"# capflow run `{report.run_id}`",
        "",
        "| objects seen | landed | quarantined | skipped | failed | clips landed "
        "| rows quarantined |",
        "|---|---|---|---|---|---|---|",
        f"| {report.seen} | {report.landed} | {report.quarantined} | {report.skipped} "
        f"| {report.failed} | {report.clips_landed} | {report.rows_quarantined} |",
        "",
        "| quarantine reason | rows |",
        "|---|---|",
        *[f"| {reason} | {n} |" for reason, n in sorted(report.reasons.items())],
        "",
        f"Wall time {report.wall_s:.1f} s. Counts reconcile: {report.reconciles}.",
    ]
    return "\n".join(lines)


@flow(name="curate", task_runner=ThreadPoolTaskRunner(max_workers=2))
def curate(config: RunConfig) -> dict[str, Any]:
    """Curate new or changed objects under config.source into LanceDB."""
    logger = get_run_logger()
    started = time.monotonic()
    ctx = FlowRunContext.get()
    run_id = str(ctx.flow_run.id) if ctx and ctx.flow_run else uuid.uuid4().hex
    ensure_tag_limits({"gpu": config.gpu_concurrency})
    src = config.source
    client = make_client(config.s3.options())
    listed = list(list_videos(client, src.bucket, src.prefix, src.since, src.until))
    ledger = Ledger(LanceStore(config.lance_uri, config.lance_storage_options()))
    todo, skipped = ledger.pending(listed, reprocess=config.reprocess)
    logger.info(
        "%d object(s) listed, %d new or changed, %d skipped", len(listed), len(todo), len(skipped)
    )
    progress.emit("planned", str(len(todo)))
    report = RunReport(run_id=run_id, seen=len(listed), skipped=len(skipped))
    reasons: Counter[str] = Counter()
    size = max(1, config.chunk_objects)
    for first in range(0, len(todo), size):
        chunk = todo[first : first + size]
        for obj, outcome in zip(chunk, curate_chunk(chunk, config, run_id), strict=True):
            if isinstance(outcome, BaseException):
                logger.error("object %s failed: %s", obj.uri, type(outcome).__name__)
                ledger.record(
                    obj, Status.FAILED, run_id, PIPELINE_VERSION, error=type(outcome).__name__
                )
                progress.emit("finished", f"failed {obj.uri}")
                report.failed += 1
                continue
            report.landed += outcome.status == "landed"
            report.quarantined += outcome.status == "quarantined"
            report.clips_landed += outcome.clips_landed
            report.rows_quarantined += len(outcome.reasons)
            reasons.update(outcome.reasons)
    report.reasons = dict(reasons)
    report.wall_s = round(time.monotonic() - started, 2)
    reports = Path(config.workdir) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{run_id}.json").write_text(json.dumps(asdict(report), indent=2))
    create_markdown_artifact(_report_markdown(report), key="capflow-run-report")
    return asdict(report)


def run_curate(config: RunConfig) -> dict[str, Any]:
    """Run the flow with the thread pool sized from the config."""
    runner = ThreadPoolTaskRunner(max_workers=config.max_workers)
    return curate.with_options(task_runner=runner)(config)
