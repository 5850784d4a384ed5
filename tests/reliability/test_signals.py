"""`capflow run` as a user runs it, in a process of its own, stopped from outside: Ctrl-C
(SIGINT to the whole process group) ends it in seconds with exit code 130 and a word on
resuming; SIGTERM leaves no temporary Prefect API behind; two runs started at once on a
loaded box both get their API. A re-run after a stop lands exactly what one run does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from storage import schema
from storage.lance_store import LanceStore

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
COPIES = 10


@pytest.fixture()
def many(s3_client: Any, bucket: str, samples: dict) -> str:
    """Enough objects that a run is still busy when it is stopped."""
    for i in range(COPIES):
        name = ("night_harbour", "sunset_meadow", "fractal_bars")[i % 3]
        s3_client.upload_file(str(samples[name].path), bucket, f"v/{i:02d}.mp4")
    return bucket


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    home = tmp / "prefect-home"
    home.mkdir(exist_ok=True)
    # Small landing batches, so a run stopped half-way has landed some objects.
    return env | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "CAPFLOW_CHUNK_OBJECTS": "2"}  # fmt: skip


class Run:
    """`capflow run` in a session of its own, its output collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], tmp: Path) -> None:
        import tempfile

        # Its own working folder, where it leaves .capflow/last.json (under pytest's tmp).
        here = tempfile.mkdtemp(prefix="capflow-run-", dir=tmp)
        self.proc = subprocess.Popen([str(BIN / "capflow"), "run", *args], env=env, cwd=here,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, text=True)  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, word: str, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(word in line for line in self.lines):
            assert self.proc.poll() is None, "\n".join(self.lines[-30:])
            assert time.monotonic() < deadline, "\n".join(self.lines[-30:])
            time.sleep(0.05)

    def finish(self, timeout_s: float = 300) -> int:
        rc = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return rc

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def _children(pid: int) -> set[int]:
    """The process's children: every process whose parent it is, from /proc."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:  # the parent's pid follows the state
            found.add(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> bytes:
    """A process's command line; empty once it has exited (the run's ffprobe and ffmpeg
    children come and go between listing them and reading this)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def _api_server(pid: int) -> int:
    for child in _children(pid):
        if b"prefect.server.api.server:create_app" in _cmdline(child):
            return child
    seen = [_cmdline(c)[:200] for c in _children(pid)]
    raise AssertionError(f"no temporary Prefect API among the run's children: {seen}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _args(local_s3: Any, bucket: str, tmp: Path) -> list[str]:
    return ["--bucket", bucket, "--endpoint-url", local_s3.endpoint_url,
            "--lance-uri", str(tmp / "lance"), "--workdir", str(tmp / "work")]  # fmt: skip


def test_ctrl_c_stops_within_seconds_and_a_rerun_resumes(
    local_s3: Any, many: str, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    run = Run(_args(local_s3, many, tmp_path), env, tmp_path)
    run.wait_for("landed")  # mid-run: something landed, most has not
    server = _api_server(run.proc.pid)
    began = time.monotonic()
    os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    rc = run.finish(timeout_s=60)
    took = time.monotonic() - began
    print(f"Ctrl-C: exit {rc} after {took:.1f} s")
    assert rc == 130, run.output[-3000:]
    assert took < 10
    assert "run the same command again to resume" in run.output
    assert not _alive(server)
    store = LanceStore(str(tmp_path / "lance"))
    done_before = store.count(schema.LEDGER)
    assert 0 < done_before < COPIES

    again = Run(_args(local_s3, many, tmp_path), env, tmp_path)
    assert again.finish() == 0, again.output[-3000:]
    assert f"skipped {done_before}" in again.output
    ids = [r["clip_id"] for r in store.rows(schema.CLIPS)]
    per_video = {0: 2, 1: 2, 2: 2}
    ledger = {r["key"]: (r["status"], r["error"]) for r in store.rows(schema.LEDGER)}
    quarantine = [(r["key"], r["reason"], r["detail"]) for r in store.rows(schema.QUARANTINE)]
    expected = sum(per_video[i % 3] for i in range(COPIES))
    assert len(ids) == len(set(ids)) == expected, (ledger, quarantine)


def test_sigterm_leaves_no_temporary_prefect_api_behind(
    local_s3: Any, many: str, tmp_path: Path
) -> None:
    run = Run(_args(local_s3, many, tmp_path), _env(tmp_path), tmp_path)
    run.wait_for("landed")
    server = _api_server(run.proc.pid)
    run.proc.send_signal(signal.SIGTERM)  # to the run only, as a supervisor does
    rc = run.finish(timeout_s=60)
    assert rc == 143, run.output[-3000:]
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server), "the temporary Prefect API outlived its run"


def test_two_runs_starting_at_once_on_a_loaded_box_both_get_their_api(
    local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    s3_client.upload_file(str(samples["night_harbour"].path), bucket, "one.mp4")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        runs = [
            Run(_args(local_s3, bucket, tmp_path / f"run{i}"), _env(tmp_path / f"run{i}"), tmp_path)
            for i in range(2)
            if (tmp_path / f"run{i}").mkdir() is None
        ]
        codes = [r.finish(timeout_s=400) for r in runs]
    finally:
        for b in burners:
            b.kill()
    assert codes == [0, 0], "\n".join(r.output[-2000:] for r in runs)
