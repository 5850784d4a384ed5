"""The gate before landing: great-expectations splits a batch into pass and quarantine.

Row-level failures send those rows to quarantine with the names of the expectations they
broke; the rest land. A batch-level failure (duplicate ids) lands nothing of the batch.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from quality.suites import BATCH_LEVEL, QualityConfig, clip_expectations

_GX_LOCK = threading.Lock()  # the GX context is not documented as thread-safe


class BatchRejected(Exception):
    """A batch-level expectation failed: nothing of the batch may land."""


@dataclass
class GateResult:
    passed: list[dict[str, Any]]
    failed: list[tuple[dict[str, Any], list[str]]]  # row, failed expectation names
    counts: dict[str, int] = field(default_factory=dict)  # expectation -> failing rows


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = ctx.data_sources.add_pandas(name="capflow")
    asset = source.add_dataframe_asset(name="clips")
    return asset.add_batch_definition_whole_dataframe(name="batch")


def _frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    def norm(v: Sequence[float] | None) -> float:
        return math.sqrt(sum(x * x for x in v)) if v is not None else float("nan")

    return pd.DataFrame(
        {
            "clip_id": [r.get("clip_id") for r in rows],
            "caption": [r.get("caption") for r in rows],
            "duration_s": [r.get("duration_s") for r in rows],
            "aesthetic_score": [r.get("aesthetic_score") for r in rows],
            "embedding_dim": [len(r.get("text_embedding") or []) for r in rows],
            "embedding_norm": [norm(r.get("text_embedding")) for r in rows],
        }
    )


def run_gate(rows: Sequence[dict[str, Any]], cfg: QualityConfig, embedding_dim: int) -> GateResult:
    """Validate a batch of clip rows; raise BatchRejected on a batch-level failure."""
    if not rows:
        return GateResult([], [])
    import great_expectations as gx

    df = _frame(rows)
    failures: dict[int, list[str]] = {}
    counts: dict[str, int] = {}
    expectations = clip_expectations(cfg, embedding_dim)
    with _GX_LOCK:
        batch_definition = _batch_definition()  # creates the context the suite needs
        suite = gx.ExpectationSuite(name="clips", expectations=expectations)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    for r in result.results:
        name = (r.expectation_config.meta or {}).get("name", r.expectation_config.type)
        bad = r.result.get("unexpected_index_list") or []
        if r.success and not bad:
            continue
        counts[name] = len(bad)
        if name in BATCH_LEVEL:
            raise BatchRejected(f"batch-level expectation {name} failed on {len(bad)} row(s)")
        for idx in bad:
            failures.setdefault(int(idx), []).append(name)
    passed = [row for i, row in enumerate(rows) if i not in failures]
    failed = [(rows[i], names) for i, names in sorted(failures.items())]
    return GateResult(passed, failed, counts)
