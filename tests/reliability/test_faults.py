"""Faults: S3 throttling and outages, a writer killed mid-commit, two runs at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from storage.s3 import S3Options, download_object, ensure_bucket, list_videos, make_client
from tests.helpers import flow_config

pytestmark = pytest.mark.slow


class SlowDown:
    """A botocore before-send hook answering 503 SlowDown to the first `times` requests
    of an operation: botocore's own retry handler sees a real throttling response."""

    def __init__(self, times: int, only_key: str | None = None) -> None:
        self.left = times
        self.only_key = only_key
        self.injected = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.only_key and not request.url.endswith(self.only_key.replace(" ", "%20")):
            return None
        with self._lock:
            if self.left <= 0:
                return None
            self.left -= 1
            self.injected += 1
        body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body

    def read(self, *_: Any) -> bytes:
        return self.body


def test_throttling_is_retried_by_botocore(local_s3: Any, bucket: str, tmp_path: Path) -> None:
    client = make_client(S3Options(endpoint_url=local_s3.endpoint_url, max_attempts=5))
    client.put_object(Bucket=bucket, Key="v.mp4", Body=b"payload")
    hook = SlowDown(times=3)
    client.meta.events.register("before-send.s3.GetObject", hook)
    [obj] = list_videos(client, bucket)
    assert download_object(client, obj, tmp_path / "input") == tmp_path / "input"
    assert hook.injected == 3 and (tmp_path / "input").read_bytes() == b"payload"


def _config(local_s3: Any, bucket: str, tmp: Path) -> Any:
    return flow_config(local_s3.endpoint_url, bucket, tmp, s3={"max_attempts": 2})


def test_an_s3_outage_fails_the_object_and_a_rerun_finishes(
    prefect_api: None,
    local_s3: Any,
    samples: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flows.prepare

    client = make_client(S3Options(endpoint_url=local_s3.endpoint_url))
    bucket = "outage"
    ensure_bucket(client, bucket)
    for name in ("night_harbour", "sunset_meadow"):
        client.upload_file(str(samples[name].path), bucket, f"{name}.mp4")
    hook = SlowDown(times=10**6, only_key="night_harbour.mp4")  # down for this object

    def throttled_client(opts: S3Options) -> Any:
        c = make_client(opts)
        c.meta.events.register("before-send.s3.GetObject", hook)
        return c

    monkeypatch.setattr(flows.prepare, "make_client", throttled_client)
    config = _config(local_s3, bucket, tmp_path)
    first = run_curate(config)
    assert (first["failed"], first["landed"]) == (1, 1)  # retried, then given up; run went on
    assert hook.injected >= 3  # botocore's attempts x Prefect's task retries
    monkeypatch.setattr(flows.prepare, "make_client", make_client)  # S3 is back
    second = run_curate(config)
    assert (second["landed"], second["skipped"], second["failed"]) == (1, 1, 0)
    keys = [r["key"] for r in LanceStore(config.lance_uri).rows(schema.CLIPS)]
    assert sorted(keys) == sorted(["night_harbour.mp4"] * 2 + ["sunset_meadow.mp4"] * 2)


def test_two_runs_at_once_land_every_clip_once(
    prefect_api: None, local_s3: Any, samples: dict, tmp_path: Path
) -> None:
    client = make_client(S3Options(endpoint_url=local_s3.endpoint_url))
    bucket = "concurrent"
    ensure_bucket(client, bucket)
    for name in ("night_harbour", "fractal_bars"):
        client.upload_file(str(samples[name].path), bucket, f"{name}.mp4")
    config = _config(local_s3, bucket, tmp_path)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(run_curate(config))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    rows = LanceStore(config.lance_uri).rows(schema.CLIPS)
    ids = [r["clip_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 4  # 2 + 2 (fractal_bars: 1 static, quarantined)


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, pyarrow as pa
    from storage.lance_store import LanceStore
    n, uri = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(n, 8)).astype("float32")
    rows = [{"clip_id": f"c{i}", "bucket": "b", "key": "k", "etag": "e",
             "caption": "x" * 200, "text_embedding": vec[i].tolist()} for i in range(n)]
    print("writing", flush=True)
    LanceStore(uri).upsert_clips(rows, 8)
    print("done", flush=True)
    """
)


def test_a_writer_killed_mid_commit_leaves_the_last_version(tmp_path: Path) -> None:
    uri = str(tmp_path / "db")
    temp = tmp_path / "temp"
    temp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), TMPDIR=str(temp))
    subprocess.run([sys.executable, "-c", WRITER, "1000", uri], env=env, check=True)
    store = LanceStore(uri)
    version = store.open_table(schema.CLIPS).version
    assert store.count(schema.CLIPS) == 1000
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, "300000", uri], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    table_dir = Path(uri) / "clips.lance"
    before = len(list(table_dir.rglob("*")))
    deadline = time.monotonic() + 60
    while len(list(table_dir.rglob("*"))) == before and time.monotonic() < deadline:
        time.sleep(0.01)  # kill as soon as the merge has started writing files
    assert len(list(table_dir.rglob("*"))) > before, "the writer never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reopened = LanceStore(uri)
    # Either the commit had not happened (previous version, 1000 rows) or it had (all
    # 300k rows): never a partial table.
    state = (reopened.open_table(schema.CLIPS).version, reopened.count(schema.CLIPS))
    assert state in ((version, 1000), (version + 1, 300000)), state
    subprocess.run([sys.executable, "-c", WRITER, "300000", uri], env=env, check=True)
    assert LanceStore(uri).count(schema.CLIPS) == 300000  # the re-run lands exactly once
    # The killed merge's spill of its batch (123 MB) stayed in the temp directory until
    # merges ran in a scratch folder of the process's, which the re-run removed
    assert sorted(p.name for p in temp.iterdir()) == []


def test_s3_stopped_mid_run_and_started_again(
    prefect_api: None,
    samples: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real server goes down as the first download starts and comes back 3 s later:
    botocore's retries (and Prefect's) carry the run, or a re-run finishes the rest."""
    import flows.prepare
    from storage.local_s3 import LocalS3Server

    server = LocalS3Server(tmp_path / "s3").start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.credentials.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.credentials.secret_access_key)
    try:
        client = make_client(S3Options(endpoint_url=server.endpoint_url))
        ensure_bucket(client, "restart")
        for name in ("night_harbour", "sunset_meadow", "fractal_bars"):
            client.upload_file(str(samples[name].path), "restart", f"{name}.mp4")
        outage = {"stopped": 0.0}
        real_download = flows.prepare.download_object

        def download_during_outage(*args: Any, **kwargs: Any) -> Any:
            if not outage["stopped"]:
                outage["stopped"] = time.monotonic()
                server.stop()
                threading.Timer(3.0, server.start).start()
            return real_download(*args, **kwargs)

        monkeypatch.setattr(flows.prepare, "download_object", download_during_outage)
        config = flow_config(server.endpoint_url, "restart", tmp_path)
        first = run_curate(config)  # does not raise: the outage is an infrastructure fault
        assert outage["stopped"]
        print(f"during the outage: {first['landed']} landed, {first['failed']} failed")
        assert first["landed"] + first["failed"] == 3 and first["quarantined"] == 0
        monkeypatch.setattr(flows.prepare, "download_object", real_download)
        second = run_curate(config)
        assert second["landed"] == first["failed"] and second["failed"] == 0
        rows = LanceStore(config.lance_uri).rows(schema.CLIPS)
        per_key = {k: sum(r["key"] == k for r in rows) for k in {r["key"] for r in rows}}
        assert per_key == {"night_harbour.mp4": 2, "sunset_meadow.mp4": 2, "fractal_bars.mp4": 2}
    finally:
        server.stop()


def test_objects_deleted_or_overwritten_mid_run(
    prefect_api: None,
    local_s3: Any,
    s3_client: Any,
    bucket: str,
    samples: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listed, then changed before the download: deleted -> source_missing; overwritten ->
    source_changed now, and curated under its new ETag by the next run (never mixed)."""
    import flows.prepare

    client = s3_client
    for name in ("night_harbour", "sunset_meadow"):
        client.upload_file(str(samples[name].path), bucket, f"{name}.mp4")
    real_download = flows.prepare.download_object

    def change_then_download(c: Any, obj: Any, dest: Path) -> Any:
        if obj.key == "night_harbour.mp4":
            client.delete_object(Bucket=bucket, Key=obj.key)
        else:  # the other sample's bytes under this key: a new ETag
            client.upload_file(str(samples["fractal_bars"].path), bucket, obj.key)
        return real_download(c, obj, dest)

    monkeypatch.setattr(flows.prepare, "download_object", change_then_download)
    config = _config(local_s3, bucket, tmp_path)
    first = run_curate(config)
    assert first["reasons"] == {"source_missing": 1, "source_changed": 1}
    store = LanceStore(config.lance_uri)
    assert schema.CLIPS not in store.table_names() or store.count(schema.CLIPS) == 0

    monkeypatch.setattr(flows.prepare, "download_object", real_download)
    second = run_curate(config)
    assert (second["seen"], second["landed"]) == (1, 1)  # the deleted one is gone
    new_etag = client.head_object(Bucket=bucket, Key="sunset_meadow.mp4")["ETag"].strip('"')
    rows = store.rows(schema.CLIPS)
    assert len(rows) == 2  # fractal_bars' two moving clips, under the new ETag only
    assert {(r["key"], r["etag"]) for r in rows} == {("sunset_meadow.mp4", new_etag)}
