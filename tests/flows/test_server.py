"""Deployments, workers, killed and concurrent backfills, and the Dask and Ray runners,
against a real `prefect server start` on 127.0.0.1 (SQLite) started by this module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.config import RunConfig
from storage import schema
from storage.lance_store import LanceStore
from storage.local_s3 import free_port
from storage.s3 import S3Options, ensure_bucket, make_client
from tests.flows.test_curate import EXPECTED_CLIPS, EXPECTED_QUARANTINE, upload
from tests.helpers import flow_config

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
POOL = "capflow-test"
BUCKET = "server-backfill"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen, grace_s: float = 20) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    log = open(home / "server.log", "wb")  # noqa: SIM115
    argv = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not _healthy(url):
        assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "prefect server did not become healthy"
        time.sleep(0.5)
    # Client-side environment for everything this module starts: the server, quietly.
    client_env = {k: v for k, v in env.items() if k != "PREFECT_SERVER_DATABASE_CONNECTION_URL"}
    client_env |= {"PREFECT_API_URL": url, "PREFECT_LOGGING_LEVEL": "WARNING"}
    try:
        yield {"url": url, "env": client_env, "home": home}
    finally:
        _drain_prefect_workers(url)
        _stop(proc)
        log.close()


def _drain_prefect_workers(url: str) -> None:
    """Flush this process's queued logs and events to the server before it stops, so they
    do not retry against a dead address later in the session."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)


@pytest.fixture()
def on_server(server: dict, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """In-process calls and the processes they start talk to the module's server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", server["url"])
    with temporary_settings(updates={PREFECT_API_URL: server["url"]}):
        yield server["url"]


@pytest.fixture(scope="module")
def uploaded(local_s3: Any, samples: dict) -> str:
    client = make_client(S3Options(endpoint_url=local_s3.endpoint_url))
    ensure_bucket(client, BUCKET)
    upload(client, BUCKET, samples)
    return BUCKET


def _config(local_s3: Any, tmp: Path, **extra: Any) -> RunConfig:
    return flow_config(local_s3.endpoint_url, BUCKET, tmp, prefix="raw/", **extra)


def _overrides(config: RunConfig) -> dict[str, Any]:
    return {
        "s3": {"endpoint_url": config.s3.endpoint_url},
        "lance_uri": config.lance_uri,
        "workdir": str(config.workdir),
    }


def _landed(lance_uri: str) -> dict[str, Any]:
    """What a run left in the store, in a form two runs can be compared by."""
    store = LanceStore(lance_uri)
    clips = store.rows(schema.CLIPS)
    return {
        "clip_ids": sorted(r["clip_id"] for r in clips),
        "per_key": {k: sum(r["key"] == k for r in clips) for k in {r["key"] for r in clips}},
        "captions": sorted((r["clip_id"], r["caption"], r["aesthetic_score"]) for r in clips),
        "quarantine": {r["key"]: r["reason"] for r in store.rows(schema.QUARANTINE)},
    }


@pytest.fixture(scope="module")
def reference(
    server: dict, uploaded: str, local_s3: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One uninterrupted run with the default thread pool: what every other run must equal."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.curate import run_curate

    config = _config(local_s3, tmp_path_factory.mktemp("reference"))
    with temporary_settings(updates={PREFECT_API_URL: server["url"]}):
        run_curate(config)
    landed = _landed(config.lance_uri)
    assert landed["per_key"] == EXPECTED_CLIPS
    assert landed["quarantine"] == EXPECTED_QUARANTINE
    return landed


def test_prefect_yaml_deploys_as_written(on_server: str, server: dict) -> None:
    from prefect.client.orchestration import get_client

    from flows.defaults import DEFAULT_CRON

    root = Path(__file__).resolve().parents[2]
    subprocess.run([str(BIN / "prefect"), "work-pool", "create", "capflow", "--type", "process"],
                   env=server["env"], cwd=root, check=True, capture_output=True)  # fmt: skip
    done = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
                          env=server["env"], cwd=root, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as api:
        incremental = api.read_deployment_by_name("curate-incremental/curate-incremental")
        backfill = api.read_deployment_by_name("backfill/backfill")
    [schedule] = incremental.schedules
    assert schedule.schedule.cron == DEFAULT_CRON and schedule.schedule.timezone == "UTC"
    assert incremental.global_concurrency_limit.limit == 1
    assert backfill.global_concurrency_limit.limit == 1 and not backfill.schedules


@pytest.fixture(scope="module")
def worker(server: dict, local_s3: Any) -> Iterator[subprocess.Popen]:
    """A process worker on POOL; flow runs inherit its environment (S3 credentials)."""
    env = server["env"] | {
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
    }
    log = open(server["home"] / "worker.log", "wb")  # noqa: SIM115
    argv = [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        _stop(proc)  # before the server: a worker whose server is gone ignores SIGTERM
        log.close()


def test_deployed_backfill_runs_on_a_worker_once_when_launched_twice(
    on_server: str,
    uploaded: str,
    local_s3: Any,
    reference: dict,
    worker: subprocess.Popen,
    tmp_path: Path,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from flows.deployments import DeploySpec, deploy_all

    config = _config(local_s3, tmp_path)
    deploy_all(DeploySpec(pool=POOL, cron="15 3 * * 1", overrides=_overrides(config)))
    with get_client(sync_client=True) as api:
        incremental = api.read_deployment_by_name("curate-incremental/curate-incremental")
    [schedule] = incremental.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("15 3 * * 1", "UTC")

    # The same backfill launched twice at once: the deployment limit runs them in turn.
    params = {"bucket": BUCKET, "prefixes": ["raw/"], "partitions": 2}
    runs = [run_deployment("backfill/backfill", parameters=params, timeout=0) for _ in range(2)]
    deadline = time.monotonic() + 420
    with get_client(sync_client=True) as api:
        while True:
            states = [api.read_flow_run(r.id).state for r in runs]
            if all(s is not None and s.is_final() for s in states):
                break
            assert worker.poll() is None, "the worker died"
            assert time.monotonic() < deadline, f"backfill runs did not finish: {states}"
            time.sleep(2)
    assert [s.name for s in states] == ["Completed", "Completed"]
    # Each child run wrote its report: 2 backfills x 2 partitions; the work was done once.
    reports = [json.loads(p.read_text()) for p in (config.workdir / "reports").glob("*.json")]
    assert len(reports) == 4
    assert sum(r["clips_landed"] for r in reports) == 6
    assert sum(r["skipped"] for r in reports) == 5  # the second launch found it all done
    landed = _landed(config.lance_uri)
    assert landed["clip_ids"] == reference["clip_ids"]
    assert landed["quarantine"] == reference["quarantine"]


def _backfill_cli(server: dict, config: RunConfig, partitions: int = 3) -> subprocess.Popen:
    argv = [str(BIN / "capflow"), "backfill", "--local", "--bucket", BUCKET, "--prefix", "raw/",
            "--partitions", str(partitions), "--concurrency", "1",
            "--endpoint-url", str(config.s3.endpoint_url), "--lance-uri", config.lance_uri,
            "--workdir", str(config.workdir)]  # fmt: skip
    env = server["env"] | {
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
    }
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def test_a_killed_backfill_resumes_to_exactly_the_rows_of_one_run(
    on_server: str, server: dict, uploaded: str, local_s3: Any, reference: dict, tmp_path: Path
) -> None:
    config = _config(local_s3, tmp_path)
    store = LanceStore(config.lance_uri)
    proc = _backfill_cli(server, config)
    deadline = time.monotonic() + 300
    recorded = 0
    while proc.poll() is None and time.monotonic() < deadline:
        if schema.LEDGER in store.table_names():
            recorded = store.count(schema.LEDGER)
            if recorded:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the backfill finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < recorded < 5  # killed with work left

    again = _backfill_cli(server, config)
    out, _ = again.communicate(timeout=420)
    assert again.returncode == 0, out.decode()[-3000:]
    assert "skipped" in out.decode()
    landed = _landed(config.lance_uri)
    assert landed["clip_ids"] == reference["clip_ids"]  # nothing twice, nothing lost
    assert landed["quarantine"] == reference["quarantine"]


def test_two_backfill_processes_at_once_land_every_clip_once(
    on_server: str, server: dict, uploaded: str, local_s3: Any, reference: dict, tmp_path: Path
) -> None:
    config = _config(local_s3, tmp_path)
    procs = [_backfill_cli(server, config, partitions=2) for _ in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=480)
        assert p.returncode == 0, out.decode()[-3000:]
    landed = _landed(config.lance_uri)
    assert landed["clip_ids"] == reference["clip_ids"]
    assert LanceStore(config.lance_uri).count(schema.LEDGER) == 5


@pytest.mark.parametrize("kind", ["dask", "ray"])
def test_process_runners_land_the_same_rows_as_the_thread_pool(
    kind: str, server: dict, uploaded: str, local_s3: Any, reference: dict, tmp_path: Path
) -> None:
    """Run as a user would, in a process of its own pointed at the server (the runner's
    worker processes talk to the same API; Ray and Dask stay out of the test process)."""
    pytest.importorskip(f"prefect_{kind}")
    config = _config(local_s3, tmp_path, runner={"kind": kind}, max_workers=2)
    script = (
        "import sys; from flows.config import RunConfig; from flows.curate import run_curate; "
        "print(run_curate(RunConfig.model_validate_json(sys.argv[1]))['clips_landed'])"
    )
    env = server["env"] | {
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    done = subprocess.run([sys.executable, "-c", script, config.model_dump_json()], env=env,
                          capture_output=True, text=True, timeout=480)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "6"
    landed = _landed(config.lance_uri)
    assert landed["captions"] == reference["captions"]
    assert landed["quarantine"] == reference["quarantine"]


def test_a_deployment_runs_from_the_code_dir_it_names_and_a_waiting_backfill_prints_totals(
    on_server: str,
    server: dict,
    uploaded: str,
    local_s3: Any,
    worker: subprocess.Popen,
    tmp_path: Path,
) -> None:
    """`capflow deploy --code-dir` records where the worker's copy of the code is (the
    image's /opt/capflow/src): here a copy elsewhere, which the worker then runs from."""
    import shutil

    from prefect.client.orchestration import get_client

    from flows.deployments import DeploySpec, deploy_all

    root = Path(__file__).resolve().parents[2]
    code = tmp_path / "image" / "src"
    for part in ("flows", "tasks", "storage", "quality"):
        shutil.copytree(root / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
    config = _config(local_s3, tmp_path)
    deploy_all(DeploySpec(pool=POOL, overrides=_overrides(config), code_dir=str(code)))
    with get_client(sync_client=True) as api:
        deployment = api.read_deployment_by_name("backfill/backfill")
    step = {"prefect.deployments.steps.set_working_directory": {"directory": str(code)}}
    assert deployment.pull_steps == [step]

    where = ["--endpoint-url", local_s3.endpoint_url, "--lance-uri", config.lance_uri,
             "--workdir", str(config.workdir)]  # fmt: skip
    done = subprocess.run(
        [str(BIN / "capflow"), "backfill", "--bucket", BUCKET, "--prefix", "raw/",
         "--partitions", "2", *where],
        env=server["env"], capture_output=True, text=True, timeout=480,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "objects seen 5: landed 3, quarantined 2, skipped 0, failed 0" in done.stdout
    assert _landed(config.lance_uri)["per_key"] == EXPECTED_CLIPS
