"""The thin Prefect wrapper every stage uses.

Caching is off here on purpose: Prefect's default cache key is per flow run and hashes
the inputs (numpy frames), which costs time and buys nothing until results are persisted
under our own keys (ETag + stage config + model + code version).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE


def stage_task(name: str, **kwargs: Any) -> Any:
    """`@task` with the options every capflow stage shares."""
    kwargs.setdefault("cache_policy", NO_CACHE)
    kwargs.setdefault("persist_result", False)
    return task(name=name, **kwargs)
