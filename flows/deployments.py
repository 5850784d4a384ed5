"""Deployments: `curate-incremental` on a cron schedule; `backfill` and `export` on demand.

`capflow deploy` registers both from this checkout (no image build, no push) on a work
pool; a worker on the pool runs them (`prefect worker start --pool NAME`). The same
deployments are written out in `prefect.yaml` for `prefect --no-prompt deploy --all`; a
test keeps the two in agreement.

Each deployment allows one run at a time (`concurrency_limit=1`, later runs wait), so two
launches of the same backfill cannot write together. Workers take their S3 credentials
from their own environment (the AWS chain); deployment parameters hold none, because the
API stores and shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow

from flows.config import build_config
from flows.curate import run_curate
from flows.defaults import DEFAULT_CRON, DEFAULT_POOL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INCREMENTAL = "curate-incremental"
BACKFILL = "backfill"
INCREMENTAL_ENTRYPOINT = "flows/deployments.py:curate_incremental"
BACKFILL_ENTRYPOINT = "flows/backfill.py:backfill"
EXPORT = "export"
EXPORT_ENTRYPOINT = "flows/export_flow.py:export_flow"


@flow(name=INCREMENTAL)
def curate_incremental(
    overrides: dict[str, Any] | None = None, config_file: str | None = None
) -> dict[str, Any]:
    """New or changed objects under the configured prefix: what the schedule runs."""
    config = build_config(Path(config_file) if config_file else None, overrides or {})
    return run_curate(config)


@dataclass
class DeploySpec:
    """What `capflow deploy` registers."""

    pool: str = DEFAULT_POOL
    cron: str = DEFAULT_CRON
    timezone: str = "UTC"
    overrides: dict[str, Any] = field(default_factory=dict)  # run config for both
    config_file: str | None = None
    # Where the worker finds this code: this checkout by default; the image's
    # /opt/capflow/src (infra/Dockerfile) for the container and Kubernetes workers.
    code_dir: str | None = None


def ensure_process_pool(name: str) -> None:
    """A `process` work pool, created when missing (an existing pool is left as it is)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def _from_code(flow_obj: Any, entrypoint: str, code_dir: str | None) -> Any:
    """The flow loaded from this checkout, recorded as living in `code_dir` (the
    deployment's pull step sets the worker's working directory there), so a worker
    whose copy of the code is elsewhere, like the image's, runs it."""
    from prefect.runner.storage import LocalStorage

    loaded = flow_obj.from_source(str(PROJECT_ROOT), entrypoint)
    if code_dir:
        loaded._storage = LocalStorage(code_dir)  # Prefect's pull step is read from here
    return loaded


def deploy_all(spec: DeploySpec) -> list[str]:
    """Register the three deployments; returns their ids. Idempotent: re-deploying updates."""
    from prefect.schedules import Cron

    from flows.backfill import backfill
    from flows.export_flow import export_flow

    ensure_process_pool(spec.pool)
    params = {"overrides": spec.overrides, "config_file": spec.config_file}
    schedule = Cron(spec.cron, timezone=spec.timezone)
    ids = []
    for flow_obj, entrypoint, name, schedules in (
        (curate_incremental, INCREMENTAL_ENTRYPOINT, INCREMENTAL, {"schedule": schedule}),
        (backfill, BACKFILL_ENTRYPOINT, BACKFILL, {}),
        (export_flow, EXPORT_ENTRYPOINT, EXPORT, {}),
    ):
        loaded = _from_code(flow_obj, entrypoint, spec.code_dir)
        ids.append(
            loaded.deploy(
                name=name,
                work_pool_name=spec.pool,
                parameters=params,
                concurrency_limit=1,
                build=False,
                push=False,
                print_next_steps=False,
                **schedules,
            )
        )
    return [str(i) for i in ids]
