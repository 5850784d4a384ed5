from __future__ import annotations

import subprocess
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def test_server_listens_on_loopback_only(local_s3: object) -> None:
    pid = local_s3._proc.pid  # type: ignore[attr-defined]
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    mine = [line for line in out.splitlines() if f"pid={pid}," in line]
    assert mine, "weed mini has no listening sockets?"
    local = [line.split()[3] for line in mine]
    assert all(addr.startswith("127.0.0.1:") for addr in local), local


def test_anonymous_requests_are_refused(local_s3: object) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(local_s3.endpoint_url + "/", timeout=5)  # type: ignore[attr-defined]
    assert err.value.code == 403


def test_wrong_secret_is_refused(local_s3: object) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=local_s3.endpoint_url,  # type: ignore[attr-defined]
        region_name="us-east-1",
        aws_access_key_id=local_s3.credentials.access_key_id,  # type: ignore[attr-defined]
        aws_secret_access_key="not-the-secret",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError):
        client.list_buckets()


def test_credentials_never_print(local_s3: object) -> None:
    secret = local_s3.credentials.secret_access_key  # type: ignore[attr-defined]
    assert secret not in repr(local_s3.credentials)  # type: ignore[attr-defined]
