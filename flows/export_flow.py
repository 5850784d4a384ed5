"""The export as a Prefect flow (and the `export` deployment): the same function as
`capflow export --local`, with its report as the run's artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.config import build_config
from flows.export import ExportSpec, export_clips, parse_size


@flow(name="export")
def export_flow(
    format: str,
    out: str,
    where: str | None = None,
    shard_size: str = "500MB",
    with_embeddings: bool = False,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Write the clips an export at `out` lacks, in `format`, shard by shard."""
    config = build_config(Path(config_file) if config_file else None, overrides or {})
    spec = ExportSpec(format, out, where, parse_size(shard_size), with_embeddings)
    report = export_clips(config, spec)
    get_run_logger().info("exported %d clip(s) in %d shard(s)", report.exported, len(report.shards))
    create_markdown_artifact(
        f"# export to {out} ({format})\n\n| exported | already there | shards | cut now |\n"
        f"|---|---|---|---|\n| {report.exported} | {report.already} | {len(report.shards)} "
        f"| {report.cut_now} |",
        key="capflow-export-report",
    )
    return {"exported": report.exported, "already": report.already,
            "shards": report.shards, "cut_now": report.cut_now}  # fmt: skip
