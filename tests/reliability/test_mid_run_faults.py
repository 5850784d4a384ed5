"""Faults in the middle of a run: a captioning server that is down, flaky or slow; a store
that becomes unwritable; index upkeep that fails. Each fails only what it touched, records
it `failed` for the next run (which finishes the work), and the run reports it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from flows import progress
from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from tests.chat_standin import StandInChatServer
from tests.helpers import flow_config

pytestmark = pytest.mark.slow

VIDEOS = {"night_harbour": 2, "sunset_meadow": 2, "fractal_bars": 2}  # clips each (+1 static)


@pytest.fixture()
def three_videos(s3_client: Any, bucket: str, samples: dict) -> str:
    for name in VIDEOS:
        s3_client.upload_file(str(samples[name].path), bucket, f"{name}.mp4")
    return bucket


def _config(local_s3: Any, bucket: str, tmp: Path, server: StandInChatServer, **extra: Any):
    caption = {"captioner": server.spec(), "retries": 2, "backoff_s": 0.01, "max_concurrency": 4}
    caption |= extra.pop("caption", {})
    return flow_config(local_s3.endpoint_url, bucket, tmp, caption=caption, **extra)


def _ledger(lance_uri: str) -> dict[str, str]:
    return {r["key"]: r["status"] for r in LanceStore(lance_uri).rows(schema.LEDGER)}


def test_a_flaky_captioning_server_is_retried_and_everything_lands(
    prefect_api: None, local_s3: Any, three_videos: str, tmp_path: Path
) -> None:
    # Four faults against five attempts per request: no request can run out of retries,
    # however the concurrent chains draw them.
    faults = {0: "503", 1: "500", 2: "drop", 5: "drop"}
    with StandInChatServer(fault=lambda n: faults.get(n, "ok")) as server:
        config = _config(local_s3, three_videos, tmp_path, server, caption={"retries": 4})
        report = run_curate(config)
    assert report["failed"] == 0 and report["clips_landed"] == sum(VIDEOS.values())
    assert server.received == server.answered + len(faults)  # each fault was retried


def test_a_captioning_server_that_is_down_fails_the_objects_and_a_rerun_finishes(
    prefect_api: None, local_s3: Any, three_videos: str, tmp_path: Path
) -> None:
    with StandInChatServer(fault=lambda n: "503") as server:
        config = _config(local_s3, three_videos, tmp_path, server)
        report = run_curate(config)  # no exception: the run reports and ends
    assert (report["failed"], report["landed"], report["quarantined"]) == (3, 0, 0)
    assert report["failures"] == {"caption": 3}
    assert report["seen"] == report["landed"] + report["quarantined"] + report["failed"]
    # Every object's first clip was tried 1 + 2 times; clips of an object that had already
    # failed were not sent at all.
    assert 3 * 3 <= server.received <= sum(VIDEOS.values()) * 3
    assert set(_ledger(config.lance_uri).values()) == {"failed"}
    store = LanceStore(config.lance_uri)
    assert store.count(schema.QUARANTINE) == 0  # a fault is not the video's fault
    saved = json.loads((tmp_path / "work" / "reports" / f"{report['run_id']}.json").read_text())
    assert saved["failed"] == 3

    with StandInChatServer() as server:  # the server is back
        again = run_curate(_config(local_s3, three_videos, tmp_path, server))
    assert (again["landed"], again["failed"], again["skipped"]) == (3, 0, 0)
    assert store.count(schema.CLIPS) == sum(VIDEOS.values())


def test_requests_that_time_out_are_retried(
    prefect_api: None, local_s3: Any, three_videos: str, tmp_path: Path
) -> None:
    hung = {0, 1}
    with StandInChatServer(fault=lambda n: "hang" if n in hung else "ok") as server:
        config = _config(local_s3, three_videos, tmp_path, server, caption={"timeout_s": 1.0})
        report = run_curate(config)
    assert report["failed"] == 0 and report["clips_landed"] == sum(VIDEOS.values())


def test_a_captioner_failing_clip_after_clip_stops_the_run_early(
    prefect_api: None, local_s3: Any, three_videos: str, tmp_path: Path
) -> None:
    with StandInChatServer(fault=lambda n: "503") as server:
        stream = {"max_consecutive_caption_failures": 2, "max_clips": 2}
        caption = {"retries": 0, "max_concurrency": 1}
        config = _config(
            local_s3, three_videos, tmp_path, server, max_workers=1, caption=caption, stream=stream
        )
        report = run_curate(config)
    assert report["failed"] == 3 and "in a row" in report["stopped"]
    assert server.received < sum(VIDEOS.values())  # it stopped asking


def test_the_cli_exits_non_zero_and_says_what_to_do(
    prefect_api: None, local_s3: Any, three_videos: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    with StandInChatServer(fault=lambda n: "503") as server:
        yaml = tmp_path / "run.yaml"
        yaml.write_text(
            f"caption: {{captioner: '{server.spec()}', retries: 0}}\n"
            f"lance_uri: '{tmp_path / 'lance'}'\nworkdir: '{tmp_path / 'work'}'\n"
        )
        args = ["run", "--bucket", three_videos, "--endpoint-url", local_s3.endpoint_url]
        result = CliRunner().invoke(app, [*args, "--config", str(yaml)])
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert "3 object(s) failed" in last and "run the same command again" in last


def test_index_upkeep_that_fails_is_reported_and_the_rows_stay(
    prefect_api: None,
    local_s3: Any,
    three_videos: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def conflict(self: LanceStore, policy: Any) -> list[str]:
        raise RuntimeError("lance error: Retryable commit conflict for version 7: CreateIndex")

    monkeypatch.setattr(LanceStore, "maintain_indexes", conflict)
    config = flow_config(local_s3.endpoint_url, three_videos, tmp_path)
    report = run_curate(config)  # does not raise
    assert "Retryable commit conflict" in report["index_error"]
    assert report["landed"] == 3 and report["failed"] == 0
    assert LanceStore(config.lance_uri).count(schema.CLIPS) == sum(VIDEOS.values())
    assert set(_ledger(config.lance_uri).values()) == {"done"}


@pytest.fixture()
def small_disk(tmp_path: Path) -> Any:
    """A 64 MiB tmpfs the test can fill or make read-only (needs root's mount)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _break(mount: Path, how: str) -> None:
    if how == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        return
    with open(mount / "filler", "wb") as f:  # the disk fills up
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass


def _mend(mount: Path, how: str) -> None:
    if how == "read-only":
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
    else:
        (mount / "filler").unlink()


@pytest.mark.parametrize("how", ["read-only", "disk full"])
def test_a_store_that_becomes_unwritable_mid_run_stops_cleanly(
    how: str,
    prefect_api: None,
    local_s3: Any,
    s3_client: Any,
    bucket: str,
    samples: dict,
    small_disk: Path,
    tmp_path: Path,
) -> None:
    for name in VIDEOS:
        s3_client.upload_file(str(samples[name].path), bucket, f"{name}.mp4")
    s3_client.upload_file(str(samples["night_harbour"].path), bucket, "copy.mp4")
    lance = small_disk / "lance"
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path, lance_uri=str(lance),
                         chunk_objects=1, max_workers=1)  # fmt: skip
    broken: list[str] = []

    def on_event(event: str, detail: str) -> None:
        if event == "finished" and not broken:
            broken.append(detail)
            _break(small_disk, how)

    unsubscribe = progress.subscribe(on_event)
    try:
        report = run_curate(config)  # no exception, whatever the store does
    finally:
        unsubscribe()
    assert broken and report["landed"] == 1
    assert report["failed"] == 3 and "store could not be written" in report["stopped"]
    assert report["seen"] == report["landed"] + report["quarantined"] + report["failed"]
    saved = tmp_path / "work" / "reports" / f"{report['run_id']}.json"
    assert json.loads(saved.read_text())["failed"] == 3  # the report is written elsewhere

    _mend(small_disk, how)
    again = run_curate(config)
    assert (again["landed"], again["skipped"], again["failed"]) == (3, 1, 0)
    rows = LanceStore(str(lance)).rows(schema.CLIPS)
    assert len(rows) == len({r["clip_id"] for r in rows}) == sum(VIDEOS.values()) + 2
    shutil.rmtree(lance, ignore_errors=True)
