"""Backfills and cached stages, in process on the temporary Prefect API and the real S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from flows.backfill import backfill
from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from storage.s3 import partition_of
from tests.flows.test_curate import EXPECTED_CLIPS, EXPECTED_QUARANTINE, clips_by_key, upload
from tests.helpers import flow_config

pytestmark = pytest.mark.slow


def test_partitions_are_stable_and_cover_every_key() -> None:
    keys = [f"raw/{i:04d}.mp4" for i in range(400)]
    parts = [partition_of(k, 4) for k in keys]
    assert parts == [partition_of(k, 4) for k in keys]  # same answer every time
    assert sorted(set(parts)) == [0, 1, 2, 3]
    assert min(parts.count(p) for p in range(4)) > 60  # roughly even


def _child_runs(parent_run_id: UUID) -> list[Any]:
    """Flow runs that are children (through tasks) of the given flow run, recursively."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        tasks = {t.id: t for t in client.read_task_runs()}
    by_id = {r.id: r for r in runs}

    def parent_of(run: Any) -> UUID | None:
        task = tasks.get(run.parent_task_run_id) if run.parent_task_run_id else None
        return task.flow_run_id if task else None

    def descends(run: Any) -> bool:
        parent = parent_of(run)
        while parent is not None:
            if parent == parent_run_id:
                return True
            parent = parent_of(by_id[parent]) if parent in by_id else None
        return False

    return [r for r in runs if descends(r)]


def test_backfill_fans_out_partitions_and_is_resumable(
    prefect_api: None, local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client

    upload(s3_client, bucket, samples)
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path)
    overrides = {
        "s3": {"endpoint_url": local_s3.endpoint_url},
        "lance_uri": config.lance_uri,
        "workdir": str(config.workdir),
    }
    state = backfill(bucket, ["raw/"], partitions=3, concurrency=2, overrides=overrides,
                     return_state=True)  # fmt: skip
    totals = state.result()
    assert totals["seen"] == 5 and totals["partitions"] == 3 and totals["partitions_failed"] == 0
    assert totals["landed"] == 3 and totals["quarantined"] == 2 and totals["clips_landed"] == 6

    store = LanceStore(config.lance_uri)
    assert {k: len(v) for k, v in clips_by_key(store).items()} == EXPECTED_CLIPS
    reasons = {r["key"]: r["reason"] for r in store.rows(schema.QUARANTINE)}
    assert reasons == EXPECTED_QUARANTINE

    # One child `curate` run per partition, under the backfill's run.
    with get_client(sync_client=True) as api:
        parent = api.read_flow_run(state.state_details.flow_run_id)
    children = [r for r in _child_runs(parent.id) if r.flow_id != parent.flow_id]
    curate_runs = [r for r in children if r.name and r.state_name == "Completed"]
    assert len([r for r in curate_runs if _flow_name(r) == "curate"]) == 3

    # Resumable: again, and nothing is redone; a range before the upload finds nothing.
    again = backfill(bucket, ["raw/"], partitions=3, overrides=overrides)
    assert (again["seen"], again["skipped"], again["clips_landed"]) == (5, 5, 0)
    assert store.count(schema.CLIPS) == 6
    before = datetime.now(UTC) - timedelta(days=1)
    assert backfill(bucket, until=before, overrides=overrides)["seen"] == 0


def _flow_name(run: Any) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as api:
        return api.read_flow(run.flow_id).name


def test_a_retried_run_takes_finished_stages_from_the_cache(
    prefect_api: None, local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    upload(s3_client, bucket, samples, names=["night_harbour", "sunset_meadow"])
    # First run: the captioning server is down, so both objects fail after decoding.
    down = {"captioner": f"openai:http://127.0.0.1:{_closed_port()}/v1#vlm", "retries": 0}
    broken = flow_config(local_s3.endpoint_url, bucket, tmp_path, caption=down)
    first = run_curate(broken)
    assert (first["failed"], first["landed"]) == (2, 0)
    store = LanceStore(broken.lance_uri)
    assert schema.CLIPS not in store.table_names() or store.count(schema.CLIPS) == 0

    fixed = flow_config(local_s3.endpoint_url, bucket, tmp_path)
    report = run_curate(fixed)
    assert report["clips_landed"] == 4
    assert _prepare_states(report["run_id"]) == ["Cached", "Cached"]  # decoded once only

    # reprocess means compute again: no cache read.
    report = run_curate(fixed.model_copy(update={"reprocess": True}))
    assert _prepare_states(report["run_id"]) == ["Completed", "Completed"]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket closes


def _prepare_states(run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as api:
        runs = api.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)]))
        )
    return sorted(str(r.state_name) for r in runs if r.name.startswith("prepare-object"))


def test_cache_keys_follow_object_version_and_stage_config() -> None:
    from flows.caching import prepare_key
    from flows.config import build_config
    from storage.types import ObjectRef

    obj = ObjectRef("b", "raw/a.mp4", "etag1", 10, datetime(2026, 1, 1, tzinfo=UTC))
    config = build_config(environ={})
    key = prepare_key(obj, config)
    assert key == prepare_key(obj, build_config(environ={}))
    assert key != prepare_key(ObjectRef("b", "raw/a.mp4", "etag2", 10, obj.last_modified), config)
    assert key != prepare_key(obj, build_config(overrides={"clips": {"min_clip_s": 3}}, environ={}))
    # Not part of the result: where it lands, how many threads, the captioner.
    other = build_config(
        overrides={"lance_uri": "/elsewhere", "max_workers": 8, "caption": {"pool_size": 2}},
        environ={},
    )
    assert key == prepare_key(obj, other)
