"""The task runner a run's config names: threads, Dask or Ray, with no code change.

Process-based runners (Dask, Ray) run tasks in other processes, which talk to the Prefect
API on their own: point them at a server (`PREFECT_API_URL`). In ephemeral mode each of
them would start a temporary API of its own.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import RunConfig

log = logging.getLogger(__name__)


class RunnerUnavailable(RuntimeError):
    """The configured runner's package is not installed."""


def make_task_runner(config: RunConfig) -> Any:
    kind, address = config.runner.kind, config.runner.address
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=config.max_workers)
    if not os.environ.get("PREFECT_API_URL"):
        log.warning(
            "runner.kind=%s without PREFECT_API_URL: every worker process starts its own "
            "temporary Prefect API; start a server and set PREFECT_API_URL",
            kind,
        )
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as e:
            raise RunnerUnavailable(
                "runner.kind=dask needs prefect-dask: pip install 'capflow[dask]'"
            ) from e
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": config.max_workers,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
            }
        )
    try:
        from prefect_ray import RayTaskRunner
    except ImportError as e:
        raise RunnerUnavailable(
            "runner.kind=ray needs prefect-ray: pip install 'capflow[ray]'"
        ) from e
    quiet = {"include_dashboard": False, "log_to_driver": False}
    if address:
        return RayTaskRunner(address=address, init_kwargs=quiet)
    return RayTaskRunner(
        init_kwargs={
            **quiet,
            "num_cpus": config.max_workers,
            "_node_ip_address": "127.0.0.1",
            "object_store_memory": 512 << 20,
        }
    )
