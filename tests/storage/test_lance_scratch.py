"""Lance's scratch (merges, index builds) lands in a folder of capflow's own and goes when
the call returns, or at the next one when the process that made it was killed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from storage.lance_scratch import PREFIX, lance_scratch


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_scratch_folder_is_tmpdir_inside_and_gone_after() -> None:
    before = os.environ.get("TMPDIR")
    with lance_scratch() as scratch:
        assert os.environ["TMPDIR"] == str(scratch)
        (scratch / ".tmpabc123").mkdir()  # what Lance's shuffle leaves
        (scratch / ".tmpabc123" / "shuffle_data.lance").write_bytes(b"x" * 1000)
    assert not scratch.exists()
    assert os.environ.get("TMPDIR") == before
    assert Path(tempfile.gettempdir()) == scratch.parent  # Python's own choice kept


def test_a_killed_processs_scratch_goes_and_a_live_ones_stays() -> None:
    system_temp = Path(tempfile.gettempdir())
    orphan = system_temp / f"{PREFIX}{_dead_pid()}-abc"
    live = system_temp / f"{PREFIX}{os.getppid()}-abc"  # the parent: alive while we run
    for folder in (orphan, live):
        (folder / ".tmpx").mkdir(parents=True)
    try:
        with lance_scratch():
            pass
        assert not orphan.exists()
        assert live.exists()
    finally:
        for folder in (orphan, live):
            if folder.exists():
                (folder / ".tmpx").rmdir()
                folder.rmdir()
