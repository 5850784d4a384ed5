"""The `curate` flow: new or changed objects under a prefix become landed, searchable clips.

The ledger picks the objects (one S3 object at one ETag is the unit of work); they go
through flows/chunk.py in chunks. Bad media becomes quarantine rows and the run goes on;
infrastructure faults are retried by Prefect and, past the retries, leave the object
`failed` for the next run. The run fails at the end (after landing the good rows) when a
batch-level quality check failed or too large a share of clips failed the gate.
"""

from __future__ import annotations

import html
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
from flows.chunk import ChunkResult, ObjectOutcome, curate_chunk
from flows.config import PIPELINE_VERSION, RunConfig
from flows.limits import ensure_tag_limits
from flows.runners import make_task_runner
from quality.gate import GateResult, build_data_docs
from storage.lance_store import IndexPolicy, LanceStore
from storage.ledger import Ledger, Status
from storage.s3 import list_sources, make_client

AESTHETIC_BINS = [float(b) for b in range(11)]  # the 0-10 scale
MOTION_BINS = [round(b / 10, 1) for b in range(11)]  # 0-1


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
    funnel: dict[str, int] = field(default_factory=dict)  # clips left after each stage
    stage_seconds: dict[str, float] = field(default_factory=dict)  # summed over objects
    aesthetic_hist: list[int] = field(default_factory=list)  # landed clips per AESTHETIC_BINS
    motion_hist: list[int] = field(default_factory=list)  # landed clips per MOTION_BINS
    caption_words: dict[str, float] = field(default_factory=dict)  # min/median/mean/max
    caption_s_per_clip: float = 0.0  # captioning device-seconds per landed clip
    clips_per_s: float = 0.0
    wall_s: float = 0.0

    @property
    def reconciles(self) -> bool:
        return self.seen == self.landed + self.quarantined + self.skipped + self.failed

    def add_gate(self, gate: GateResult) -> None:
        for name, n in gate.evaluated.items():
            counts = self.checks.setdefault(name, [0, 0])
            counts[0] += n
            counts[1] += gate.failures.get(name, 0)

    def add_chunk(self, result: ChunkResult) -> None:
        self.funnel = dict(Counter(self.funnel) + result.funnel)
        seconds = Counter(self.stage_seconds) + Counter(result.seconds)
        self.stage_seconds = {k: round(v, 3) for k, v in seconds.items()}

    def summarise_landed(self, landed: list[dict[str, float]]) -> None:
        """Histograms and caption statistics over the clips that landed."""
        self.aesthetic_hist = _histogram([m["aesthetic"] for m in landed], AESTHETIC_BINS)
        self.motion_hist = _histogram([m["motion"] for m in landed], MOTION_BINS)
        words = sorted(m["words"] for m in landed)
        if words:
            self.caption_words = {
                "min": words[0],
                "median": words[len(words) // 2],
                "mean": round(sum(words) / len(words), 1),
                "max": words[-1],
            }
            device_s = sum(m["caption_seconds"] for m in landed)
            self.caption_s_per_clip = round(device_s / len(words), 4)

    def add_outcome(self, outcome: ObjectOutcome) -> None:
        self.landed += outcome.status == "landed"
        self.quarantined += outcome.status == "quarantined"
        self.clips_landed += outcome.clips_landed
        self.rows_quarantined += len(outcome.reasons)
        self.reasons = dict(Counter(self.reasons) + Counter(outcome.reasons))


def md_text(text: str) -> str:
    """Free text (error messages, which may quote keys) made inert for a markdown artifact:
    no HTML, no table breaks, no links."""
    return html.escape(text).replace("|", "\\|").replace("[", "\\[").replace("\n", " ")


def _histogram(values: list[float], edges: list[float]) -> list[int]:
    """Counts per [edge_i, edge_i+1), the last bin closed; len(edges) - 1 bins."""
    counts = [0] * (len(edges) - 1)
    for v in values:
        i = next((i for i in range(len(counts)) if v < edges[i + 1]), len(counts) - 1)
        counts[max(0, i)] += 1
    return counts


def _hist_rows(title: str, edges: list[float], counts: list[int]) -> list[str]:
    if not any(counts):
        return []
    cells = [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(counts))]
    return [
        f"| {title} | " + " | ".join(cells) + " |",
        "|---" * (len(cells) + 1) + "|",
        "| clips | " + " | ".join(str(c) for c in counts) + " |",
        "",
    ]


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
    if report.funnel:
        stages = list(report.funnel)
        lines += [
            "",
            "| " + " | ".join(stages) + " |",
            "|---" * len(stages) + "|",
            "| " + " | ".join(str(report.funnel[s]) for s in stages) + " |",
            "",
        ]
    lines += _hist_rows("aesthetic score", AESTHETIC_BINS, report.aesthetic_hist)
    lines += _hist_rows("motion score", MOTION_BINS, report.motion_hist)
    if report.caption_words:
        w = report.caption_words
        lines.append(
            f"Caption words: min {w['min']:g}, median {w['median']:g}, mean {w['mean']:g}, "
            f"max {w['max']:g}. Captioning {report.caption_s_per_clip:.3f} device-s per clip."
        )
    if report.stage_seconds:
        lines += [
            "",
            "| stage | seconds (summed over objects) |",
            "|---|---|",
            *[f"| {k} | {v:.2f} |" for k, v in report.stage_seconds.items()],
            "",
        ]
    if report.data_docs:
        lines.append(f"Data Docs: [{report.data_docs}]({report.data_docs})")
    lines += [f"Batch rejected: {md_text(e)}" for e in report.batch_errors]
    lines.append(
        f"Wall time {report.wall_s:.1f} s, {report.clips_per_s:.2f} clips/s. "
        f"Counts reconcile: {report.reconciles}."
    )
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
    ensure_tag_limits(config.limits.as_tags())
    src = config.source
    client = make_client(config.s3.options())
    listed = list_sources(
        client, src.bucket, src.all_prefixes(), src.since, src.until, src.partition, src.partitions
    )
    ledger = Ledger(LanceStore(config.lance_uri, config.lance_storage_options()))
    todo, skipped = ledger.pending(listed, reprocess=config.reprocess)
    logger.info(
        "%d object(s) listed, %d new or changed, %d skipped", len(listed), len(todo), len(skipped)
    )
    progress.emit("planned", str(len(todo)))
    report = RunReport(run_id=run_id, seen=len(listed), skipped=len(skipped))
    landed: list[dict[str, float]] = []  # per landed clip: what the histograms are made of
    size = max(1, config.chunk_objects)
    for first in range(0, len(todo), size):
        chunk = todo[first : first + size]
        result = curate_chunk(chunk, config, run_id)
        report.add_chunk(result)
        landed += result.landed
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
    report.summarise_landed(landed)
    report.wall_s = round(time.monotonic() - started, 2)
    report.clips_per_s = round(report.clips_landed / report.wall_s, 3) if report.wall_s else 0.0
    (out / "reports").mkdir(parents=True, exist_ok=True)
    result = asdict(report)
    (out / "reports" / f"{run_id}.json").write_text(json.dumps(result, indent=2))
    create_markdown_artifact(report_markdown(report), key="capflow-run-report")
    verdict = _quality_verdict(report, config.quality.max_failed_fraction)
    if verdict:
        raise QualityGateFailed(verdict)
    return result


def run_curate(config: RunConfig) -> dict[str, Any]:
    """Run the flow on the task runner the config names."""
    return curate.with_options(task_runner=make_task_runner(config))(config)
