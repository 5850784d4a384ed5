"""A scratch folder of capflow's own for Lance's native index builds.

Lance's vector index build shuffles through a `.tmpXXXXXX` folder in the OS temp
directory that nothing removes when two builds race or a build is retried (lance #8992:
the folder's guard is dropped before the shuffle writer recreates it). In this project's
tests, two racing index builds left two such folders a run; a day of CI and benchmark
runs had left 104 folders (12.8 GB) in /tmp, and a full disk is what stopped SeaweedFS
taking new buckets. A scheduled deployment that folds new rows in every hour would fill
its disk the same way.

The build's native code finds the temp directory through `TMPDIR` each time it makes a
folder, so the build runs with `TMPDIR` pointed at a folder of our own, removed when the
build returns. The folder is named after the process, so a later build removes the
folders of processes that were killed mid-build. Python's own `tempfile` keeps the
directory it found first and is not moved.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "capflow-lance-"
_SWAP = threading.Lock()  # TMPDIR is one per process: builds in threads take turns


@contextmanager
def lance_scratch() -> Iterator[Path]:
    """Run the body with `TMPDIR` set to a new folder of this process, then remove it."""
    system_temp = Path(tempfile.gettempdir())  # fixes Python's own choice before the swap
    with _SWAP:
        remove_orphans(system_temp)
        scratch = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=system_temp))
        before = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(scratch)
        try:
            yield scratch
        finally:
            if before is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = before
            shutil.rmtree(scratch, ignore_errors=True)


def remove_orphans(folder: Path) -> list[Path]:
    """Remove the scratch folders in `folder` whose process is gone; returns them."""
    removed = []
    for path in folder.glob(f"{PREFIX}*-*"):
        pid = path.name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
