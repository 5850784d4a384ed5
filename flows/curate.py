"""The `curate` flow: new or changed objects under a prefix become landed, searchable clips.

The ledger picks the objects (one S3 object at one ETag is the unit of work), objects gone
from the bucket are pruned from every sink, and the rest stream through preparation,
captioning and landing at once (flows/streaming.py). Bad media becomes quarantine rows and
the run goes on; infrastructure faults are retried and, past the retries, leave the object
`failed` for the next run. The run fails at the end (after landing the good rows) when a
batch-level quality check failed, too large a share of clips failed the gate, or objects
failed; index upkeep that fails is reported and never undoes what landed.
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
from flows.caching import prepare_cache_key_fn, with_cache
from flows.config import RunConfig
from flows.landing import LanceSink, Outcome, land_batch_task, prune_missing
from flows.limits import ensure_tag_limits, holding_slot
from flows.prepare import prepare_object_task
from flows.runners import make_task_runner
from flows.streaming import StreamingRun, StreamResult
from storage.lance_store import IndexPolicy, LanceStore
from storage.ledger import Ledger, Status
from storage.local import is_local_bucket, list_folder
from storage.manifest import list_manifest, read_manifest
from storage.s3 import list_bucket, make_client

AESTHETIC_BINS = [float(b) for b in range(11)]  # the 0-10 scale
MOTION_BINS = [round(b / 10, 1) for b in range(11)]  # 0-1
SHARE_BINS = [0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]  # of the frame
STAGE_BINS = {  # the filter stages' scores, where they ran
    "motion_excursion": SHARE_BINS,
    "keyframe_change": SHARE_BINS,
    "text_area": SHARE_BINS,
    "text_artificial_area": SHARE_BINS,
}


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
    pruned: int = 0  # objects gone from the bucket whose rows were removed
    clips_landed: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    clips_gated: int = 0
    clips_failed_gate: int = 0
    checks: dict[str, list[int]] = field(default_factory=dict)  # name -> [evaluated, failed]
    batch_errors: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # why objects failed
    stopped: str = ""  # why the run stopped early, if it did
    index_error: str = ""  # index upkeep failed (what landed stays landed)
    data_docs: str | None = None
    funnel: dict[str, int] = field(default_factory=dict)  # clips left after each stage
    stage_seconds: dict[str, float] = field(default_factory=dict)  # summed over objects
    aesthetic_hist: list[int] = field(default_factory=list)  # landed clips per AESTHETIC_BINS
    motion_hist: list[int] = field(default_factory=list)  # landed clips per MOTION_BINS
    stage_hists: dict[str, list[int]] = field(default_factory=dict)  # per STAGE_BINS
    caption_words: dict[str, float] = field(default_factory=dict)  # min/median/mean/max
    caption_s_per_clip: float = 0.0  # captioning device-seconds per landed clip
    peak_buffer_clips: int = 0
    peak_buffer_mb: float = 0.0
    clips_per_s: float = 0.0
    wall_s: float = 0.0

    @property
    def reconciles(self) -> bool:
        return self.seen == self.landed + self.quarantined + self.skipped + self.failed

    def add_stream(self, result: StreamResult) -> None:
        self.funnel = dict(result.funnel)
        self.stage_seconds = {k: round(v, 3) for k, v in result.seconds.items()}
        self.checks = {k: list(v) for k, v in result.checks.items()}
        for landed in result.landed:
            self.clips_gated += landed.clips_gated
            self.clips_failed_gate += landed.clips_failed_gate
            if landed.batch_error:
                self.batch_errors.append(landed.batch_error)
        for outcome in result.outcomes:
            self.add_outcome(outcome)
        self.stopped = result.stopped
        self.peak_buffer_clips = result.peak_buffer_clips
        self.peak_buffer_mb = result.peak_buffer_mb

    def summarise_landed(self, landed: list[dict[str, float]]) -> None:
        """Histograms and caption statistics over the clips that landed."""
        self.aesthetic_hist = _histogram([m["aesthetic"] for m in landed], AESTHETIC_BINS)
        self.motion_hist = _histogram([m["motion"] for m in landed], MOTION_BINS)
        for name, edges in STAGE_BINS.items():
            values = [m[name] for m in landed if name in m]
            if values:
                self.stage_hists[name] = _histogram(values, edges)
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

    def add_outcome(self, outcome: Outcome) -> None:
        self.landed += outcome.status == Status.DONE
        self.quarantined += outcome.status == Status.QUARANTINED
        self.failed += outcome.status == Status.FAILED
        if outcome.status == Status.FAILED:
            cause = outcome.error.split(":", 1)[0] or "unknown"
            self.failures[cause] = self.failures.get(cause, 0) + 1
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
        "| objects seen | landed | quarantined | skipped | failed | pruned | clips landed "
        "| rows quarantined |",
        "|---|---|---|---|---|---|---|---|",
        f"| {report.seen} | {report.landed} | {report.quarantined} | {report.skipped} "
        f"| {report.failed} | {report.pruned} | {report.clips_landed} "
        f"| {report.rows_quarantined} |",
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
    for name, counts in report.stage_hists.items():
        lines += _hist_rows(name.replace("_", " "), STAGE_BINS[name], counts)
    if report.funnel.get("clips_marked_duplicate"):
        n = report.funnel["clips_marked_duplicate"]
        lines.append(f"{n} landed clips are marked `duplicate_of` another.")
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
    lines += [f"Failed: {n} x {md_text(cause)}" for cause, n in sorted(report.failures.items())]
    if report.stopped:
        lines.append(f"Stopped early: {md_text(report.stopped)}")
    if report.index_error:
        lines.append(f"Index upkeep failed (the rows landed): {md_text(report.index_error)}")
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
    limits = config.limits.as_tags()
    ensure_tag_limits(limits)
    stages = config.clip_stages()
    # Models load once, before any object is touched: a missing model is one clear error.
    from tasks.caption import load_captioner
    from tasks.embed import load_embedder

    captioner = load_captioner(config.caption)
    embedder = load_embedder(config.embed.model, config.embed.device, config.embed.batch_size)
    src = config.source
    if src.manifest:
        uris = read_manifest(Path(src.manifest))
        listing = list_manifest(uris, lambda: make_client(config.s3.options()), src.since,
                                src.until, src.partition, src.partitions, src.identity)  # fmt: skip
    elif is_local_bucket(src.bucket):
        listing = list_folder(src.bucket, src.all_prefixes(), src.since, src.until,
                              src.partition, src.partitions, src.identity)  # fmt: skip
    else:
        client = make_client(config.s3.options())
        listing = list_bucket(client, src.bucket, src.all_prefixes(), src.since, src.until,
                              src.partition, src.partitions)  # fmt: skip
    listed = listing.selected
    store = LanceStore(config.lance_uri, config.lance_storage_options())
    ledger = Ledger(store)
    dedup = config.duplicates if "duplicates" in config.stages else None
    sinks: list[Any] = [LanceSink(store, dedup)]
    if config.media.enabled:  # first: the rows it fills land with the LanceDB sink
        from flows.media_sink import MediaSink, open_media
        from flows.prepare import staging_dir

        media = open_media(config.media, config.s3.options())
        sinks.insert(0, MediaSink(store, config.media, staging_dir(config), media))
    report = RunReport(run_id=run_id, seen=len(listed))
    if src.prune_missing and not src.manifest:
        known = ledger.entries(src.bucket)
        gone = listing.missing(known, src.all_prefixes(), src.partition, src.partitions)
        prune_missing(sinks, ledger, [(src.bucket, k) for k in gone])
        report.pruned = len(gone)
        if gone:
            logger.info("pruned %d object(s) no longer in the bucket", len(gone))
    todo, skipped = ledger.pending(listed, reprocess=config.reprocess)
    report.skipped = len(skipped)
    logger.info(
        "%d object(s) listed, %d new or changed, %d skipped", len(listed), len(todo), len(skipped)
    )
    progress.emit("planned", str(len(todo)))
    prepare = with_cache(prepare_object_task, prepare_cache_key_fn, config)
    if "cpu" in limits:
        prepare = prepare.with_options(tags=["cpu"])
    land = land_batch_task.with_options(tags=["s3"]) if "s3" in limits else land_batch_task
    streaming = StreamingRun(config, run_id, prepare, captioner, embedder, sinks, stages, land)
    with holding_slot("gpu", limits):  # one run per accelerator, when limits.gpu is set
        result = streaming.run(todo)
    report.add_stream(result)
    if report.clips_landed:
        try:
            created = store.maintain_indexes(
                IndexPolicy(vector_index_min_rows=config.vector_index_min_rows)
            )
            if created:
                logger.info("created indexes on %s", ", ".join(created))
        except Exception as e:  # upkeep is for speed; the rows are already committed
            report.index_error = f"{type(e).__name__}: {e}"[:500]
            logger.warning("index upkeep failed; the run's rows stay landed: %s", e)
    _finish_report(report, result, config, started)
    verdict = _quality_verdict(report, config.quality.max_failed_fraction)
    if verdict:
        raise QualityGateFailed(verdict)
    return asdict(report)


def _finish_report(
    report: RunReport, result: StreamResult, config: RunConfig, started: float
) -> None:
    """Histograms, Data Docs, the JSON report and the run's artifact, each where it can
    be written: a store that failed mid-run must not cost the report too."""
    logger = get_run_logger()
    out = Path(config.workdir)
    if config.quality.data_docs and report.checks:
        try:
            from quality.gate import build_data_docs

            report.data_docs = build_data_docs(out / "data_docs" / report.run_id)
        except OSError as e:
            logger.warning("Data Docs could not be written: %s", e)
    report.summarise_landed([m for landed in result.landed for m in landed.metrics])
    report.wall_s = round(time.monotonic() - started, 2)
    report.clips_per_s = round(report.clips_landed / report.wall_s, 3) if report.wall_s else 0.0
    try:
        (out / "reports").mkdir(parents=True, exist_ok=True)
        (out / "reports" / f"{report.run_id}.json").write_text(json.dumps(asdict(report), indent=2))
    except OSError as e:
        logger.error("the run report could not be written to %s: %s", out / "reports", e)
    create_markdown_artifact(report_markdown(report), key="capflow-run-report")


def run_curate(config: RunConfig) -> dict[str, Any]:
    """Run the flow on the task runner the config names."""
    return curate.with_options(task_runner=make_task_runner(config))(config)
