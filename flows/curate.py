"""The `curate` flow: new or changed objects under a prefix become landed, searchable clips.

Per object (one S3 object at one ETag, the unit of work): download -> probe ->
transitions -> clips -> keyframes -> aesthetic -> caption -> embed -> gate -> land, then
the ledger records it. Bad media becomes quarantine rows and the run goes on; only
infrastructure faults raise, and Prefect retries the object.
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
from flows.rows import clip_row, quarantine_row
from quality.gate import BatchRejected, run_gate
from storage.lance_store import LanceStore
from storage.ledger import Ledger, Status
from storage.s3 import download_object, list_videos, make_client
from storage.types import ObjectRef, Rejection, RejectReason, ScoredClip
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


def process_object(
    obj: ObjectRef, config: RunConfig, run_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every stage on one object: (clip rows that passed the gate, quarantine rows)."""
    quarantined: list[Rejection] = []
    tmp_root = Path(config.workdir) / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        local = download_object(make_client(config.s3.options()), obj, Path(tmp) / "input")
        if isinstance(local, Rejection):
            return [], [quarantine_row(obj, local, PIPELINE_VERSION, run_id)]
        probe = probe_task(local, config.probe)
        if isinstance(probe, Rejection):
            return [], [quarantine_row(obj, probe, PIPELINE_VERSION, run_id)]
        analysis = transitions_task(local, probe, config.transitions)
        if isinstance(analysis, Rejection):
            return [], [quarantine_row(obj, analysis, PIPELINE_VERSION, run_id)]
        clips = clips_task(analysis, config.clips)
        if not clips:
            detail = f"no shot of at least {config.clips.min_clip_s} s after trimming"
            no_clips = Rejection("clips", RejectReason.NO_CLIPS, detail)
            return [], [quarantine_row(obj, no_clips, PIPELINE_VERSION, run_id)]
        scored: list[ScoredClip] = []
        for clip in clips:
            keyframes = keyframes_task(local, probe, clip, config.keyframes)
            result = (
                keyframes
                if isinstance(keyframes, Rejection)
                else aesthetic_task(clip, keyframes, config.aesthetic)
            )
            if isinstance(result, Rejection):
                quarantined.append(result)
            else:
                scored.append(result)
    captions = caption_task(scored, config.caption)
    captioned = []
    for clip, cap in zip(scored, captions, strict=True):
        if isinstance(cap, Rejection):
            quarantined.append(cap)
        else:
            captioned.append((clip, cap))
    vectors = embed_task([cap.text for _, cap in captioned], config.embed)
    embedder = load_embedder(config.embed.model, config.embed.device, config.embed.batch_size)
    rows = [
        clip_row(obj, probe, clip, cap, vec.tolist(), embedder.name, PIPELINE_VERSION, run_id)
        for (clip, cap), vec in zip(captioned, vectors, strict=True)
    ]
    gate = run_gate(rows, config.quality, embedder.dim)
    for row, names in gate.failed:
        span = (row["start_s"], row["end_s"])
        quarantined.append(
            Rejection("quality", RejectReason.QUALITY_FAILED, "failed: " + ", ".join(names), span)
        )
    q_rows = [quarantine_row(obj, r, PIPELINE_VERSION, run_id) for r in quarantined]
    return gate.passed, q_rows


def curate_object(obj: ObjectRef, config: RunConfig, run_id: str) -> ObjectOutcome:
    """Process and land one object version; record it in the ledger after the commit."""
    store = LanceStore(config.lance_uri, config.lance_storage_options())
    ledger = Ledger(store)
    try:
        clip_rows, q_rows = process_object(obj, config, run_id)
    except BatchRejected as e:
        clip_rows = []
        q_rows = [
            quarantine_row(
                obj,
                Rejection("quality", RejectReason.QUALITY_FAILED, str(e)),
                PIPELINE_VERSION,
                run_id,
            )
        ]
    embedder = load_embedder(config.embed.model, config.embed.device, config.embed.batch_size)
    store.upsert_clips(clip_rows, embedder.dim)
    store.upsert_quarantine(q_rows)
    if clip_rows:
        store.delete_other_versions(obj.bucket, obj.key, obj.etag)
    status = Status.DONE if clip_rows else Status.QUARANTINED
    reasons = [r["reason"] for r in q_rows]
    ledger.record(
        obj, status, run_id, PIPELINE_VERSION, clips=len(clip_rows), error=";".join(reasons)
    )
    outcome = "landed" if clip_rows else "quarantined"
    progress.emit("finished", f"{outcome} {obj.uri}")
    return ObjectOutcome(obj.uri, outcome, len(clip_rows), reasons)


@task(
    name="curate-object",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_jitter_factor=0.5,
)
def curate_object_task(obj: ObjectRef, config: RunConfig, run_id: str) -> ObjectOutcome:
    return curate_object(obj, config, run_id)


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
    futures = [curate_object_task.submit(obj, config, run_id) for obj in todo]
    reasons: Counter[str] = Counter()
    for obj, future in zip(todo, futures, strict=True):
        try:
            outcome: ObjectOutcome = future.result()
        except Exception as e:  # an infrastructure fault that outlived the retries
            logger.error("object %s failed: %s", obj.uri, type(e).__name__)
            ledger.record(obj, Status.FAILED, run_id, PIPELINE_VERSION, error=type(e).__name__)
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
