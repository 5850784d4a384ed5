"""A local folder as a source, with a bucket's semantics.

An object of a folder is an `ObjectRef` whose `bucket` is the folder's absolute path and
whose `key` is the file's path inside it (so `uri` is `file:///folder/key`); its version
(the ledger's ETag) is the file's size and modification time, or with `identity:
content` a SHA-256 of its bytes (a copy that only touched the mtime is then not new
work). So a folder is incremental like a bucket: a second run skips what it did, a
changed file is re-done, a deleted one pruned.

Keys are data: a file is read from the folder it was listed in, by the path the listing
found; symbolic links are not followed (nothing outside the folder is read).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from storage.s3 import VIDEO_EXTENSIONS, Listing, in_window, is_video_key, partition_of
from storage.types import ObjectRef, Rejection, RejectReason, stable_id

IDENTITIES = ("stat", "content")


def is_local_bucket(bucket: str) -> bool:
    return bucket.startswith("/")


def folder_of(spec: str) -> str:
    """A folder path or file:// URL as the absolute path a local bucket is named by."""
    if spec.startswith("file://"):
        parsed = urlparse(spec)
        spec = unquote(parsed.path)
    return str(Path(spec).expanduser().resolve())


def _version(path: Path, size: int, mtime_ns: int, identity: str) -> str:
    if identity == "content":
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return "sha256-" + digest.hexdigest()[:32]
    return stable_id("stat", size, mtime_ns)


def list_folder(
    root: str,
    prefixes: list[str],
    since: datetime | None = None,
    until: datetime | None = None,
    partition: int = 0,
    partitions: int = 1,
    identity: str = "stat",
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
) -> Listing:
    """The folder's videos as `list_bucket` lists a bucket's (same prefixes, dates and
    partitions; `present` holds every video key, for pruning)."""
    if identity not in IDENTITIES:
        raise ValueError(f"source.identity must be one of {', '.join(IDENTITIES)}")
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"no folder {root} (the run's source)")
    found: dict[str, ObjectRef] = {}
    present: set[str] = set()
    for folder, dirs, files in os.walk(base, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            key = path.relative_to(base).as_posix()
            if path.is_symlink() or not is_video_key(key, extensions):
                continue
            if not any(key.startswith(p) for p in prefixes):
                continue
            if partitions > 1 and partition_of(key, partitions) != partition:
                continue
            present.add(key)
            st = path.stat()
            modified = datetime.fromtimestamp(st.st_mtime, UTC)
            if not in_window(modified, since, until):
                continue
            version = _version(path, st.st_size, st.st_mtime_ns, identity)
            found[key] = ObjectRef(root, key, version, st.st_size, modified)
    return Listing(list(found.values()), present)


def local_object(root: str, key: str, identity: str = "stat") -> ObjectRef:
    """One file of a folder as its listing would give it."""
    path = Path(root) / key
    st = path.stat()
    modified = datetime.fromtimestamp(st.st_mtime, UTC)
    version = _version(path, st.st_size, st.st_mtime_ns, identity)
    return ObjectRef(root, key, version, st.st_size, modified)


def open_local(obj: ObjectRef) -> Path | Rejection:
    """The listed file itself (nothing is copied), if it is still the version listed."""
    path = Path(obj.bucket) / obj.key
    try:
        st = path.lstat()
    except FileNotFoundError:
        return Rejection("download", RejectReason.SOURCE_MISSING, "file deleted since listing")
    modified = datetime.fromtimestamp(st.st_mtime, UTC)
    if path.is_symlink() or st.st_size != obj.size or modified != obj.last_modified:
        return Rejection("download", RejectReason.SOURCE_CHANGED, "file changed since listing")
    return path
