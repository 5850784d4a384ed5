"""A temporary Prefect API for one command, when no server is configured.

Prefect's own ephemeral server is started in the caller's process group, so a Ctrl-C at
the terminal kills it first and the run then retries the dead API for minutes; and a
SIGTERM to the caller leaves it orphaned, still listening. This one is the same app
(Prefect's `create_app` under uvicorn, on 127.0.0.1, the UI off, the database in
PREFECT_HOME), but in a session of its own: a Ctrl-C reaches the run, which stops and
reports to a live API, and the server is stopped when the command ends, however it ends.
Its start-up waits as long as a loaded machine needs (Prefect's 20 s default is too short
for two runs starting at once on a busy 2-core box).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

STARTUP_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
DEFAULT_STARTUP_S = 120.0


class PrefectAPIUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:  # noqa: S310 (loopback)
            return bool(resp.status == 200)
    except OSError:
        return False


def configured_api_url() -> str | None:
    """The API the Prefect settings already point at (a server, Cloud, a test harness)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def temporary_api(log_dir: Path | None = None) -> Iterator[str | None]:
    """Point Prefect at a server of this command's own for the block, unless one is
    configured already; yields the API URL in use."""
    existing = configured_api_url()
    if existing:
        yield existing
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ, PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1")
    argv = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
            "--lifespan", "on"]  # fmt: skip
    log = open(log_dir / "prefect-server.log", "ab") if log_dir else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    try:
        limit = float(os.environ.get(STARTUP_SETTING) or DEFAULT_STARTUP_S)
        deadline = time.monotonic() + limit
        while not _healthy(url):
            if proc.poll() is not None:
                raise PrefectAPIUnavailable(
                    f"the temporary Prefect API exited with code {proc.returncode} while "
                    "starting; set PREFECT_API_URL to a running server instead"
                )
            if time.monotonic() > deadline:
                raise PrefectAPIUnavailable(
                    f"the temporary Prefect API did not answer within {limit:.0f} s; raise "
                    f"{STARTUP_SETTING} or set PREFECT_API_URL to a running server"
                )
            time.sleep(0.2)
        os.environ["PREFECT_API_URL"] = url  # for processes this command starts
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        _drain_workers()
        _stop(proc)
        if log_dir:
            log.close()  # type: ignore[union-attr]


def _drain_workers() -> None:
    """Send this process's queued logs and events before the server goes."""
    with contextlib.suppress(Exception):
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=3)
        EventsWorker.drain_all(timeout=3)
