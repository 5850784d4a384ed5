"""Several processes writing one table at the same moment, on a local folder and on s3://
(SeaweedFS): every key lands once, index upkeep never fails a writer, a killed writer
holds nobody up. Races start from a shared wall-clock instant and are tried a bounded
number of times; each round's duplicates are counted, and must be zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from storage import schema
from storage.lance_store import IndexPolicy, LanceStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 3
WRITERS = 4

# Each writer upserts the same 40 new clip ids (and its own 10), then keeps the indexes,
# as a curate run's landing does.
WRITER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from storage.lance_store import IndexPolicy, LanceStore
    uri, start, me, options = sys.argv[1], float(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    rng = np.random.default_rng(int(me))
    ids = [f"shared-{i}" for i in range(40)] + [f"own-{me}-{i}" for i in range(10)]
    rows = [{"clip_id": c, "bucket": "b", "key": c, "etag": "e", "caption": f"clip {c}",
             "text_embedding": rng.normal(size=8).astype("float32").tolist()} for c in ids]
    store = LanceStore(uri, options or None)
    while time.time() < start:
        time.sleep(0.001)
    store.upsert_clips(rows, 8)
    store.maintain_indexes(IndexPolicy())
    print("ok", flush=True)
    """
)


def _race(uri: str, options: dict[str, str] | None, env: dict[str, str]) -> list[str]:
    start = time.time() + 6  # every process imports lancedb first, then waits for this
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, uri, str(start), str(i), json.dumps(options or {})],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    errors = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        if p.returncode != 0 or out.strip() != "ok":
            errors.append(err.strip().splitlines()[-1] if err.strip() else f"rc {p.returncode}")
    return errors


def _duplicates(store: LanceStore) -> int:
    ids = [r["clip_id"] for r in store.rows(schema.CLIPS, columns=["clip_id"])]
    return len(ids) - len(set(ids))


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), LANCEDB_LOG="error", **(extra or {}))


def _s3_options(local_s3: Any) -> dict[str, str]:
    return {
        "endpoint": local_s3.endpoint_url,
        "allow_http": "true",
        "region": "us-east-1",
        "virtual_hosted_style_request": "false",
    }


def test_writers_racing_on_s3_never_duplicate_a_key(local_s3: Any, s3_client: Any) -> None:
    from storage.s3 import ensure_bucket

    ensure_bucket(s3_client, "race")
    options = _s3_options(local_s3)
    seen = []
    for round_ in range(ROUNDS):
        uri = f"s3://race/round-{round_}"
        errors = _race(uri, options, _env())
        store = LanceStore(uri, options)
        seen.append(_duplicates(store))
        assert not errors, errors  # index upkeep conflicts included: no writer failed
        assert store.count(schema.CLIPS) == 40 + 10 * WRITERS
        assert "caption_idx" in store.index_names()
    print(f"s3 races: {ROUNDS} rounds x {WRITERS} writers, duplicates per round {seen}")
    assert seen == [0] * ROUNDS


def test_writers_racing_on_a_local_folder_never_duplicate_a_key(tmp_path: Path) -> None:
    """... and leave nothing in the temp directory. (These races left none even before
    Lance ran in a scratch folder of capflow's; the races on s3:// in the killed-writer
    test below left two shuffle folders a run.)"""
    seen = []
    temp = tmp_path / "temp"
    temp.mkdir()
    for round_ in range(ROUNDS):
        uri = str(tmp_path / f"round-{round_}")
        errors = _race(uri, None, _env({"TMPDIR": str(temp)}))
        store = LanceStore(uri)
        seen.append(_duplicates(store))
        assert not errors, errors
        assert store.count(schema.CLIPS) == 40 + 10 * WRITERS
    assert seen == [0] * ROUNDS
    assert sorted(p.name for p in temp.iterdir()) == []


def test_index_upkeep_in_threads_at_once_never_fails(tmp_path: Path) -> None:
    """Two runs of one process (a backfill's partitions) keeping the indexes at once:
    the one that loses the race to create an index finds it made and goes on."""
    import numpy as np

    rng = np.random.default_rng(0)
    for round_ in range(ROUNDS):
        store = LanceStore(str(tmp_path / f"threads-{round_}"))
        rows = [
            {"clip_id": f"c{i}", "bucket": "b", "key": "k", "etag": "e", "caption": f"clip {i}",
             "text_embedding": rng.normal(size=8).astype("float32").tolist()}
            for i in range(50)
        ]  # fmt: skip
        store.upsert_clips(rows, 8)
        errors: list[BaseException] = []
        barrier = threading.Barrier(3)

        def keep(s: LanceStore = store) -> None:
            barrier.wait()
            try:
                LanceStore(s.uri).maintain_indexes(IndexPolicy())
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=keep) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert store.index_names() == ["caption_idx"]


def test_seaweedfs_honours_create_only_puts(local_s3: Any, s3_client: Any) -> None:
    """Lance's commits on s3:// rely on `If-None-Match: *` being enforced: of several
    create-only PUTs of one key at once, exactly one may succeed. A store that accepted
    the header and ignored it would fail here, before it could lose data."""
    from storage.s3 import S3Options, ensure_bucket, make_client

    ensure_bucket(s3_client, "conformance")
    for round_ in range(ROUNDS):
        key = f"manifest-{round_}"
        won, refused = [], []
        barrier = threading.Barrier(8)

        def put(i: int, key: str = key) -> None:
            client = make_client(S3Options(endpoint_url=local_s3.endpoint_url))
            barrier.wait()
            try:
                client.put_object(Bucket="conformance", Key=key, Body=f"{i}".encode(),
                                  IfNoneMatch="*")  # fmt: skip
                won.append(i)
            except ClientError as e:
                refused.append(e.response["Error"]["Code"])

        threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(refused) == 7, (won, refused)
        body = s3_client.get_object(Bucket="conformance", Key=key)["Body"].read()
        assert body == str(won[0]).encode()


def test_a_writer_killed_mid_merge_on_s3_holds_nobody_up(
    local_s3: Any, s3_client: Any, tmp_path: Path
) -> None:
    """No lock is held, so a writer SIGKILLed in the middle of its merge leaves the table
    at its last commit, and the next writer lands at once, each key once."""
    import signal

    from storage.s3 import ensure_bucket

    ensure_bucket(s3_client, "killed")
    options = _s3_options(local_s3)
    uri = "s3://killed/table"
    temp = tmp_path / "temp"
    temp.mkdir()
    env = _env({"TMPDIR": str(temp)})
    assert not _race(uri, options, env)  # a table with rows, and its index
    start = str(time.time())
    big = WRITER.replace("range(40)", "range(40000)")
    proc = subprocess.Popen([sys.executable, "-c", big, uri, start, "9", json.dumps(options)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(4)  # importing, then writing its data files
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    began = time.monotonic()
    assert not _race(uri, options, env)
    # A lock left by the killed writer would hold the race until a lease ran out. Measured
    # here: the race before the kill 7 s, this one 51 s alone and 78 s under the full suite
    # on a 2-core VM, so the line is 150 s. The ~45 s more is no lock: the killed writer's
    # 40,000 rows had committed, and each of the 4 writers folds them into the indexes
    # (13 s for one writer alone, 45-47 s for four at once on 2 cores, and the same 45 s
    # after a 40,000-row upsert that was not killed).
    assert time.monotonic() - began < 150
    store = LanceStore(uri, options)
    assert _duplicates(store) == 0
    assert store.count(schema.CLIPS) in (40 + 10 * WRITERS, 40000 + 10 * (WRITERS + 1))
    # The races' full-text index builds left Lance's shuffle folders in the temp directory
    # (two here, 0.5 MB; lance #8992 reports the same of vector indexes) until they ran
    # in a scratch folder of capflow's
    assert sorted(p.name for p in temp.iterdir()) == []
