"""Quiet, offline defaults for every capflow process, set before heavy imports.

Only defaults: a variable the user already set wins. Called by the CLI entrypoint and
the test configuration, never at import time of a library module.
"""

from __future__ import annotations

import logging
import os

QUIET_OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    "LANCEDB_LOG": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    # onnxruntime (RapidOCR's runtime; 1.32 here) reports to Microsoft from Linux too: a
    # device id and an event store under ~/.cache/Microsoft and a session file in the temp
    # directory, uploaded when it can reach the network. Read before its first session:
    # this opts out of all of it.
    "ORT_DISABLE_TELEMETRY": "1",
}


def apply_quiet_offline_defaults() -> None:
    for name, value in QUIET_OFFLINE.items():
        os.environ.setdefault(name, value)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
