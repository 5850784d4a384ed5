"""Shared fixtures: quiet offline settings, synthesised videos, the real local S3 server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from flows.environment import apply_quiet_offline_defaults

apply_quiet_offline_defaults()


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The demo's sample set, synthesised once per test session, by name."""
    from flows.samples import synthesize_samples

    out = tmp_path_factory.mktemp("samples")
    return {s.name: s for s in synthesize_samples(out)}


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real SeaweedFS S3 server on 127.0.0.1; its credentials are exported for boto3."""
    from storage.local_s3 import LocalS3Server

    server = LocalS3Server(tmp_path_factory.mktemp("s3")).start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = server.credentials.access_key_id
    os.environ["AWS_SECRET_ACCESS_KEY"] = server.credentials.secret_access_key
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture()
def s3_client(local_s3: object) -> object:
    from storage.s3 import S3Options, make_client

    return make_client(S3Options(endpoint_url=local_s3.endpoint_url))  # type: ignore[attr-defined]


@pytest.fixture()
def bucket(s3_client: object, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test, named after it."""
    import re

    from storage.s3 import ensure_bucket

    name = "t-" + re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    ensure_bucket(s3_client, name)
    return name


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A temporary Prefect API (its own SQLite database) for the flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
