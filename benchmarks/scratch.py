"""Scratch folders for a benchmark's videos, stores and servers' data.

A benchmark run writes hundreds of MB (1080p speed videos, labelled sets, a LanceDB table);
left in /tmp, a few dozen runs filled enough of the disk that weed mini's disk-sized volume
count ran short. The folder is removed when the benchmark exits (an exception included);
set CAPFLOW_KEEP_SCRATCH=1 to keep it and look at what was measured: the benchmarks print
the paths.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A fresh temporary folder, removed at interpreter exit unless CAPFLOW_KEEP_SCRATCH=1."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("CAPFLOW_KEEP_SCRATCH") != "1":
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
