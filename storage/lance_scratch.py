"""A scratch folder of capflow's own for Lance's native writes and index builds.

Lance leaves folders in the OS temp directory that nothing removes:
- a merge spills its batch to `.tmpXXXXXX/spill.arrows` so that it can replay it after
  a conflict (lancedb hands Lance a one-shot stream); a writer killed mid-merge leaves
  it: 123 MB for the 300,000-row batch of the killed-writer test, one a CI run. A day of
  CI and benchmark runs had left 104 of them (12.8 GB) in /tmp, and a full disk is what
  stopped SeaweedFS taking new buckets;
- an index build shuffles through such a folder and leaves it when two builds race or a
  build is retried: two a run of the racing-writers test, whose tables get only the
  full-text index (lance #8992 reports the same of vector index builds: the folder's
  guard is dropped before the shuffle writer recreates it).
A scheduled deployment whose runs are sometimes killed (out of memory, preempted) would
fill its disk the same way.

The native code finds the temp directory through `TMPDIR` each time it makes a folder,
so merges and index builds run with `TMPDIR` pointed at a folder of our own, removed
when they return. The folder is named after the process, so the next write of any
capflow process removes the folders of processes that were killed mid-write. Python's
own `tempfile` keeps the directory it found first and is not moved. `TMPDIR` is one per
process, so merges and builds in threads of one process take turns here, and a child
process another thread starts meanwhile (an ffmpeg decode) inherits the folder; capflow's
landing writes from one thread, and its children write no temporary files.
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
_SWAP = threading.RLock()  # TMPDIR is one per process: writes in threads take turns


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


def remove_orphans(folder: Path) -> None:
    """Remove the scratch folders in `folder` whose process is gone (0.6 ms a write with
    559 entries in /tmp, against a merge's 0.1 s and more)."""
    for path in folder.glob(f"{PREFIX}*-*"):
        pid = path.name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
