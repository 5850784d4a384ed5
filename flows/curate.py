"""The `curate` flow: new or changed objects under a prefix become landed, searchable clips.

The ledger picks the objects (one S3 object at one ETag is the unit of work); they go
through flows/chunk.py in chunks. Bad media becomes quarantine rows and the run goes on;
infrastructure faults are retried by Prefect and, past the retries, leave the object
`failed` for the next run. The run fails at the end (after landing the good rows) when a
batch-level quality check failed or too large a share of clips failed the gate.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from flows import progress
from flows.chunk import ObjectOutcome, curate_chunk
from flows.config import PIPELINE_VERSION, RunConfig
from flows.limits import ensure_tag_limits
from quality.gate import GateResult, build_data_docs
from storage.lance_store import IndexPolicy, LanceStore
from storage.ledger import Ledger, Status
from storage.s3 import list_videos, make_client


class QualityGateFailed(RuntimeError):
    """The run landed its good rows but its data failed the quality bar."""


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
    clips_gated: int = 0
    clips_failed_gate: int = 0
    checks: dict[str, list[int]] = field(default_factory=dict)  # name -> [evaluated, failed]
    batch_errors: list[str] = field(default_factory=list)
    data_docs: str | None = None
    wall_s: float = 0.0

    @property
    def reconciles(self) -> bool:
        return self.seen == self.landed + self.quarantined + self.skipped + self.failed

    def add_gate(self, gate: GateResult) -> None:
        for name, n in gate.evaluated.items():
            counts = self.checks.setdefault(name, [0, 0])
            counts[0] += n
            counts[1] += gate.failures.get(name, 0)

    def add_outcome(self, outcome: ObjectOutcome) -> None:
        self.landed += outcome.status == "landed"
        self.quarantined += outcome.status == "quarantined"
        self.clips_landed += outcome.clips_landed
        self.rows_quarantined += len(outcome.reasons)
        self.reasons = dict(Counter(self.reasons) + Counter(outcome.reasons))


def report_markdown(report: RunReport) -> str:
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
        "| quality check | rows evaluated | rows failed |",
        "|---|---|---|",
        *[f"| {name} | {ev} | {bad} |" for name, (ev, bad) in sorted(report.checks.items())],
        "",
        f"Gate: {report.clips_gated - report.clips_failed_gate} of {report.clips_gated} "
        "clips passed.",
    ]
    if report.data_docs:
        lines.append(f"Data Docs: [{report.data_docs}]({report.data_docs})")
    lines += [f"Batch rejected: {e}" for e in report.batch_errors]
    lines.append(f"Wall time {report.wall_s:.1f} s. Counts reconcile: {report.reconciles}.")
    return "\n".join(lines)


def _quality_verdict(report: RunReport, max_failed_fraction: float) -> str | None:
    if report.batch_errors:
        return "; ".join(report.batch_errors)
    if report.clips_gated and report.clips_failed_gate / report.clips_gated > max_failed_fraction:
        return (
            f"{report.clips_failed_gate} of {report.clips_gated} clips failed the quality gate, "
            f"more than the allowed {max_failed_fraction:.0%} (quality.max_failed_fraction): "
            "check the captioning model and prompts"
        )
    return None


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
    size = max(1, config.chunk_objects)
    for first in range(0, len(todo), size):
        chunk = todo[first : first + size]
        result = curate_chunk(chunk, config, run_id)
        for gate in result.gates:
            report.add_gate(gate)
            if "clip_id_present" in gate.evaluated:
                report.clips_gated += len(gate.passed) + len(gate.failed)
                report.clips_failed_gate += len(gate.failed)
        if result.batch_error:
            report.batch_errors.append(result.batch_error)
        for obj, outcome in zip(chunk, result.outcomes, strict=True):
            if isinstance(outcome, BaseException):
                logger.error("object %s failed: %s", obj.uri, outcome)
                ledger.record(obj, Status.FAILED, run_id, PIPELINE_VERSION, error=str(outcome))
                progress.emit("finished", f"failed {obj.uri}")
                report.failed += 1
            else:
                report.add_outcome(outcome)
    if report.clips_landed:
        store = LanceStore(config.lance_uri, config.lance_storage_options())
        created = store.maintain_indexes(
            IndexPolicy(vector_index_min_rows=config.vector_index_min_rows)
        )
        if created:
            logger.info("created indexes on %s", ", ".join(created))
    out = Path(config.workdir)
    if config.quality.data_docs and report.checks:
        report.data_docs = build_data_docs(out / "data_docs" / run_id)
    report.wall_s = round(time.monotonic() - started, 2)
    (out / "reports").mkdir(parents=True, exist_ok=True)
    (out / "reports" / f"{run_id}.json").write_text(json.dumps(asdict(report), indent=2))
    create_markdown_artifact(report_markdown(report), key="capflow-run-report")
    verdict = _quality_verdict(report, config.quality.max_failed_fraction)
    if verdict:
        raise QualityGateFailed(verdict)
    return asdict(report)


def run_curate(config: RunConfig) -> dict[str, Any]:
    """Run the flow with the thread pool sized from the config."""
    runner = ThreadPoolTaskRunner(max_workers=config.max_workers)
    return curate.with_options(task_runner=runner)(config)
