"""S3 access with boto3: one client factory, listing, and version-pinned downloads.

The client uses botocore's `standard` retry mode (retries throttling, 5xx and connection
errors with backoff; the default `legacy` mode retries less) and explicit timeouts.
Credentials come from the options when given, else from the standard AWS chain.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from storage.types import ObjectRef, Rejection, RejectReason, stable_id

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".ts", ".mpg", ".mpeg")


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: str = "path"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_attempts: int = 5
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)


def make_client(opts: S3Options) -> Any:
    """A boto3 S3 client; explicit keys if given, else the standard AWS credential chain."""
    import boto3  # here, not at import: reading a config must not cost boto3's import
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": opts.addressing_style},
        signature_version="s3v4",
        retries={"mode": "standard", "total_max_attempts": opts.max_attempts},
        connect_timeout=opts.connect_timeout_s,
        read_timeout=opts.read_timeout_s,
    )
    kwargs: dict[str, Any] = {"region_name": opts.region, "config": config}
    if opts.endpoint_url:
        kwargs["endpoint_url"] = opts.endpoint_url
    if opts.access_key_id and opts.secret_access_key:
        kwargs["aws_access_key_id"] = opts.access_key_id
        kwargs["aws_secret_access_key"] = opts.secret_access_key
    return boto3.session.Session().client("s3", **kwargs)


def ensure_bucket(client: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        client.create_bucket(Bucket=bucket)


def is_video_key(key: str, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> bool:
    return not key.endswith("/") and key.lower().endswith(extensions)


def list_videos(
    client: Any,
    bucket: str,
    prefix: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    page_size: int = 1000,
) -> Iterator[ObjectRef]:
    """Objects under `prefix` with a video extension, LastModified in [since, until)."""
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
    )
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            if not is_video_key(key, extensions):
                continue
            modified = item["LastModified"]
            if not in_window(modified, since, until):
                continue
            yield ObjectRef(
                bucket=bucket,
                key=key,
                etag=item["ETag"].strip('"'),
                size=int(item["Size"]),
                last_modified=modified,
            )


def in_window(modified: datetime, since: datetime | None, until: datetime | None) -> bool:
    """Whether a LastModified lies in [since, until) (an open end is no bound)."""
    return (since is None or modified >= since) and (until is None or modified < until)


def partition_of(key: str, partitions: int) -> int:
    """The partition a key belongs to: stable across runs, processes and machines."""
    return int(stable_id("partition", key)[:8], 16) % partitions


@dataclass(frozen=True)
class Listing:
    """One pass over the prefixes: what this run takes, and every video key that exists."""

    selected: list[ObjectRef]  # in [since, until) and in this partition, each key once
    present: set[str]  # every video key under the prefixes in this partition, any date

    def missing(
        self, known: Iterable[str], prefixes: list[str], partition: int, partitions: int
    ) -> list[str]:
        """Of the `known` keys (the ledger's), those under these prefixes and in this
        partition that the bucket no longer holds."""
        return sorted(
            k
            for k in known
            if k not in self.present
            and any(k.startswith(p) for p in prefixes)
            and (partitions == 1 or partition_of(k, partitions) == partition)
        )


def list_bucket(
    client: Any,
    bucket: str,
    prefixes: list[str],
    since: datetime | None = None,
    until: datetime | None = None,
    partition: int = 0,
    partitions: int = 1,
) -> Listing:
    """Videos under any of `prefixes`, in one partition of `partitions`: those modified in
    [since, until), and the set of every key there (what pruning compares against)."""
    found: dict[str, ObjectRef] = {}
    present: set[str] = set()
    for prefix in prefixes:
        for obj in list_videos(client, bucket, prefix):
            if partitions > 1 and partition_of(obj.key, partitions) != partition:
                continue
            present.add(obj.key)
            if in_window(obj.last_modified, since, until):
                found.setdefault(obj.key, obj)
    return Listing(list(found.values()), present)


def download_object(client: Any, obj: ObjectRef, dest: Path) -> Path | Rejection:
    """Download exactly the listed version of `obj` to `dest` (a name we chose, not the key).

    A changed object (412 on If-Match) or a deleted one (404) is a Rejection for this run,
    not an error: the next run lists it again under its new ETag, or not at all.
    """
    from botocore.exceptions import ClientError

    try:
        resp = client.get_object(Bucket=obj.bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("PreconditionFailed", "412") or status == 412:
            return Rejection("download", RejectReason.SOURCE_CHANGED, "ETag changed since listing")
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return Rejection(
                "download", RejectReason.SOURCE_MISSING, "object deleted since listing"
            )
        raise
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with resp["Body"] as body, open(tmp, "wb") as f:
        shutil.copyfileobj(body, f, length=1 << 20)
    tmp.replace(dest)
    return dest
