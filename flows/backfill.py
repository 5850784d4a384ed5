"""The `backfill` flow: old prefixes or a date range, fanned out as one child run per partition.

Every child is an ordinary `curate` run over one partition (a stable hash of the key), so
a backfill is resumable for the same reason a scheduled run is: the ledger says what is
done, and a re-run after a crash takes only the rest. Children run `concurrency` at a
time; the deployment's own concurrency limit (flows/deployments.py) keeps two launches of
it from running at once, and the store's single writer per table keeps rows unique even
when they do.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import RunConfig, build_config
from flows.curate import md_text, run_curate

TOTALS = ("seen", "landed", "quarantined", "skipped", "failed", "clips_landed")


class BackfillFailed(RuntimeError):
    """At least one partition failed; the others landed. Run the backfill again."""


def backfill_config(
    bucket: str,
    prefixes: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
) -> RunConfig:
    """The run config of a backfill: defaults < file < CAPFLOW_* env < overrides < the
    source given here (only what is given: the file's prefixes stand unless replaced)."""
    if not bucket:
        raise ValueError("a backfill needs a bucket")
    source: dict[str, Any] = {"bucket": bucket}
    if prefixes:
        source["prefixes"] = list(prefixes)
    if since is not None:
        source["since"] = since
    if until is not None:
        source["until"] = until
    merged = {**(overrides or {})}
    merged["source"] = {**merged.get("source", {}), **source}
    config = build_config(Path(config_file) if config_file else None, merged)
    src = config.source
    if not src.prefixes and src.since is None and src.until is None:
        raise ValueError("a backfill needs prefixes or a LastModified range (since/until)")
    return config


def partition_configs(config: RunConfig, partitions: int) -> list[RunConfig]:
    source = config.source
    return [
        config.model_copy(
            update={"source": source.model_copy(update={"partition": i, "partitions": partitions})}
        )
        for i in range(partitions)
    ]


@task(name="curate-partition", cache_policy=NO_CACHE)
def curate_partition(config: RunConfig) -> dict[str, Any]:
    """One partition as a child flow run of the backfill."""
    return run_curate(config)


TOTALS_ARTIFACT = "capflow-backfill-totals"


@flow(name="backfill")
def backfill(
    bucket: str,
    prefixes: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    partitions: int = 4,
    concurrency: int = 2,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Curate everything under `prefixes` or modified in [since, until), in partitions."""
    logger = get_run_logger()
    config = backfill_config(bucket, prefixes, since, until, overrides, config_file)
    partitions = max(1, partitions)
    runner = ThreadPoolTaskRunner(max_workers=max(1, min(concurrency, partitions)))
    fan_out = _fan_out.with_options(task_runner=runner)
    reports, errors = fan_out(partition_configs(config, partitions))
    totals = {k: sum(r[k] for r in reports) for k in TOTALS}
    totals["partitions"] = partitions
    totals["partitions_failed"] = len(errors)
    lines = [
        f"# backfill of s3://{bucket} ({partitions} partitions)",
        "",
        "| " + " | ".join(TOTALS) + " |",
        "|---" * len(TOTALS) + "|",
        "| " + " | ".join(str(totals[k]) for k in TOTALS) + " |",
        *[f"\nPartition failed: {md_text(e)}" for e in errors],
    ]
    create_markdown_artifact("\n".join(lines), key="capflow-backfill-report")
    # The same numbers as data, for whoever launched the run and waits for it (the CLI).
    create_table_artifact([totals], key=TOTALS_ARTIFACT)
    logger.info("backfill totals: %s", totals)
    if errors:
        raise BackfillFailed(
            f"{len(errors)} of {partitions} partitions failed; run the backfill again "
            f"to finish them: {'; '.join(errors)}"
        )
    return totals


@flow(name="backfill-partitions")
def _fan_out(configs: list[RunConfig]) -> tuple[list[dict[str, Any]], list[str]]:
    """Children at the runner's concurrency; a failed child does not stop its siblings."""
    futures = [curate_partition.submit(c) for c in configs]
    reports, errors = [], []
    for config, future in zip(configs, futures, strict=True):
        try:
            reports.append(future.result())
        except Exception as e:
            errors.append(f"partition {config.source.partition}: {e}")
    return reports, errors
