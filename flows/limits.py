"""Tag concurrency limits the flow relies on, created when missing (never changed).

`gpu` caps the runs captioning at once (a run holds one slot while it captions: one
model per accelerator); `cpu` and `s3` tag the prepare-object and land-batch task runs.
An operator's own setting wins: an existing limit is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound


def ensure_tag_limits(limits: dict[str, int]) -> dict[str, int]:
    """tag -> the limit in force after the call."""
    in_force: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        for tag, limit in limits.items():
            try:
                in_force[tag] = client.read_concurrency_limit_by_tag(tag).concurrency_limit
            except ObjectNotFound:
                client.create_concurrency_limit(tag=tag, concurrency_limit=limit)
                in_force[tag] = limit
    return in_force


@contextmanager
def holding_slot(tag: str, limits: dict[str, int]) -> Iterator[None]:
    """Hold one slot of the tag's limit for the block (a run's whole captioning, say),
    when the run config sets that limit; the lease lapses if the holder is killed."""
    if tag not in limits:
        yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(f"tag:{tag}", occupy=1):
        yield
