"""A manifest as a source: a CSV (a `uri` column, or the first one) or JSONL (`{"uri": …}`
per line) of s3://bucket/key and file:///path (or plain path) URIs.

Each entry becomes the same ObjectRef a bucket or folder listing gives (S3: HEAD for its
ETag, size and date; a file: its size and mtime, or content hash), so the ledger skips
what is done and re-does what changed, entry by entry. An entry that does not exist is
not dropped: it is listed with `MISSING` as its version and preparation quarantines it
(`source_missing`). A manifest names objects rather than prefixes, so nothing is pruned
by leaving an entry out.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.local import folder_of, local_object
from storage.s3 import Listing, in_window, partition_of
from storage.types import ObjectRef

MISSING = "missing"
MANIFEST_SUFFIXES = (".csv", ".jsonl")


class ManifestError(ValueError):
    """A manifest that cannot be read: said with its file and line."""


def read_manifest(path: Path) -> list[str]:
    """The URIs a manifest lists, in order, each once."""
    text = Path(path).read_text(encoding="utf-8")
    uris: list[str] = []
    if Path(path).suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                uris.append(str(entry["uri"] if isinstance(entry, dict) else entry))
            except (ValueError, KeyError) as e:
                raise ManifestError(f'{path}:{n}: expected {{"uri": ...}} ({e})') from e
    else:
        rows = list(csv.reader(text.splitlines()))
        if rows and "uri" in [c.strip().lower() for c in rows[0]]:
            column = [c.strip().lower() for c in rows[0]].index("uri")
            rows = rows[1:]
        else:
            column = 0
        uris = [r[column].strip() for r in rows if len(r) > column and r[column].strip()]
    return list(dict.fromkeys(uris))


def _s3_object(client: Any, bucket: str, key: str) -> ObjectRef:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404 or str(e.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey"):
            return ObjectRef(bucket, key, MISSING, 0, datetime.now(UTC))
        raise
    return ObjectRef(
        bucket, key, head["ETag"].strip('"'), int(head["ContentLength"]), head["LastModified"]
    )


def _file_object(uri: str, identity: str) -> ObjectRef:
    path = Path(folder_of(uri))
    if path.is_file() and not path.is_symlink():
        return local_object(str(path.parent), path.name, identity)
    return ObjectRef(str(path.parent), path.name, MISSING, 0, datetime.now(UTC))


def list_manifest(
    uris: list[str],
    client_factory: Any,
    since: datetime | None = None,
    until: datetime | None = None,
    partition: int = 0,
    partitions: int = 1,
    identity: str = "stat",
) -> Listing:
    """The manifest's entries as a Listing (`client_factory()` makes the S3 client, once,
    only if an s3:// entry needs it)."""
    client = None
    selected = []
    for uri in uris:
        if partitions > 1 and partition_of(uri, partitions) != partition:
            continue
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            if not bucket or not key:
                raise ManifestError(f"{uri!r} is not s3://bucket/key")
            client = client or client_factory()
            obj = _s3_object(client, bucket, key)
        else:
            obj = _file_object(uri, identity)
        if obj.etag != MISSING and not in_window(obj.last_modified, since, until):
            continue
        selected.append(obj)
    return Listing(selected, set())
