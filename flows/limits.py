"""Tag concurrency limits the flow relies on, created when missing (never changed).

`gpu` caps concurrent captioning calls: one model per accelerator. An operator's own
setting wins: an existing limit is left as it is.
"""

from __future__ import annotations

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
