"""`capflow demo`: sample videos -> embedded S3 -> the curate flow -> a table and a search.

Everything lives under the workdir: the S3 server's data and credentials, the samples,
the LanceDB database (WORKDIR/lance), Prefect's home and the run reports. A second demo
on the same workdir uploads nothing new, so the ledger skips every object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from flows.config import RunConfig, build_config
from flows.samples import synthesize_samples
from storage.local_s3 import LocalS3Server
from storage.s3 import S3Options, ensure_bucket, make_client

DEMO_BUCKET = "capflow-demo"
DEMO_PREFIX = "raw/"
DEMO_QUERY = "dark blue scene with fast motion"


@dataclass
class DemoLayout:
    root: Path

    @property
    def s3(self) -> Path:
        return self.root / "s3"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def lance(self) -> Path:
        return self.root / "lance"


def upload_missing(client: Any, samples_dir: Path) -> int:
    """Upload each sample whose key is not in the bucket yet; returns how many."""
    ensure_bucket(client, DEMO_BUCKET)
    uploaded = 0
    for path in sorted(samples_dir.glob("*.mp4")):
        key = DEMO_PREFIX + path.name
        try:
            client.head_object(Bucket=DEMO_BUCKET, Key=key)
            continue
        except ClientError:
            pass
        client.upload_file(str(path), DEMO_BUCKET, key)
        uploaded += 1
    return uploaded


def demo_config(layout: DemoLayout, endpoint_url: str) -> RunConfig:
    return build_config(
        overrides={
            "source": {"bucket": DEMO_BUCKET, "prefix": DEMO_PREFIX},
            "s3": {"endpoint_url": endpoint_url},
            "lance_uri": str(layout.lance.resolve()),
            "workdir": str(layout.root.resolve() / "work"),
            "media": {"uri": str(layout.root.resolve() / "media")},  # for `capflow serve`
        },
        environ={},
    )


def start_demo_services(layout: DemoLayout) -> tuple[LocalS3Server, int]:
    """Synthesise samples if missing, start S3, upload what is missing."""
    if not any(layout.samples.glob("*.mp4")):
        synthesize_samples(layout.samples)
    server = LocalS3Server(layout.s3).start()
    # Credentials reach boto3 and LanceDB through the standard chain, never the config.
    os.environ["AWS_ACCESS_KEY_ID"] = server.credentials.access_key_id
    os.environ["AWS_SECRET_ACCESS_KEY"] = server.credentials.secret_access_key
    client = make_client(S3Options(endpoint_url=server.endpoint_url))
    return server, upload_missing(client, layout.samples)
