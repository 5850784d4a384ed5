"""The gate before landing: great-expectations splits a batch into land and quarantine.

Row-level failures send those rows to quarantine with the names of the checks they broke;
the rest land. A batch-level failure (duplicate ids) or a batch whose row count does not
reconcile with what was captioned lands nothing and fails the run. Validation results are
kept in the process's GX context, so Data Docs for a run are built once, at its end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from quality.frames import clip_frame, source_frame
from quality.suites import Check, QualityConfig, clip_checks, source_checks

_GX_LOCK = threading.Lock()  # one GX context per process; not documented as thread-safe


class BatchRejected(Exception):
    """A batch-level check failed: nothing of the batch may land."""


@dataclass
class GateResult:
    passed: list[dict[str, Any]]
    failed: list[tuple[dict[str, Any], list[str]]]  # row, names of the failed checks
    evaluated: dict[str, int] = field(default_factory=dict)  # check -> rows evaluated
    failures: dict[str, int] = field(default_factory=dict)  # check -> rows failing


@lru_cache(maxsize=1)
def _context() -> tuple[Any, Any]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # Its INFO lines (temporary docs folders) are noise in a pipeline's log.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = ctx.data_sources.add_pandas(name="capflow")
    return ctx, source


_CHECKPOINTS: dict[str, Any] = {}


def _checkpoint(suite_name: str, signature: str, checks: Sequence[Check]) -> Any:
    """A checkpoint per (suite, its settings): registered once, reused for every batch.
    Call with _GX_LOCK held."""
    import great_expectations as gx

    key = f"{suite_name}-{len(_CHECKPOINTS)}"
    if signature in _CHECKPOINTS:
        return _CHECKPOINTS[signature]
    ctx, source = _context()
    batch_definition = source.add_dataframe_asset(name=key).add_batch_definition_whole_dataframe(
        name=key
    )
    suite = ctx.suites.add(
        gx.ExpectationSuite(name=key, expectations=[c.expectation for c in checks])
    )
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=key, data=batch_definition, suite=suite)
    )
    _CHECKPOINTS[signature] = ctx.checkpoints.add(
        gx.Checkpoint(
            name=key,
            validation_definitions=[definition],
            actions=[],
            result_format={"result_format": "COMPLETE"},
        )
    )
    return _CHECKPOINTS[signature]


def validate(
    suite_name: str,
    signature: str,
    checks: Sequence[Check],
    df: pd.DataFrame,
    rows: Sequence[dict[str, Any]],
) -> GateResult:
    """Run the checks on df (one row per entry of rows) and split rows by the outcome.
    `signature` identifies the settings the checks were built from."""
    if df.empty:
        return GateResult([], [])
    batch_level = {c.name for c in checks if c.batch_level}
    failing: dict[int, list[str]] = {}
    result = GateResult([], [])
    with _GX_LOCK:
        checkpoint = _checkpoint(suite_name, signature, checks)
        run = checkpoint.run(batch_parameters={"dataframe": df})
    for r in next(iter(run.run_results.values())).results:
        name = (r.expectation_config.meta or {}).get("name", r.expectation_config.type)
        bad = [int(i) for i in r.result.get("unexpected_index_list") or []]
        result.evaluated[name] = len(df)
        result.failures[name] = len(bad)
        if name in batch_level and (bad or not r.success):
            raise BatchRejected(
                f"{suite_name}: batch-level check {name} failed on {len(bad)} row(s); "
                "nothing of this batch lands"
            )
        for i in bad:
            failing.setdefault(i, []).append(name)
    result.passed = [row for i, row in enumerate(rows) if i not in failing]
    result.failed = [(rows[i], names) for i, names in sorted(failing.items())]
    return result


def gate_clips(
    rows: Sequence[dict[str, Any]], cfg: QualityConfig, embedding_dim: int, expected: int
) -> GateResult:
    """The clips suite on one batch; `expected` is how many clips were captioned for it."""
    if len(rows) != expected:
        raise BatchRejected(
            f"clips: {len(rows)} row(s) reached the gate but {expected} were captioned; "
            "counts do not reconcile, nothing of this batch lands"
        )
    signature = f"clips {cfg!r} {embedding_dim}"
    return validate("clips", signature, clip_checks(cfg, embedding_dim), clip_frame(rows), rows)


def gate_sources(rows: Sequence[dict[str, Any]], cfg: QualityConfig) -> GateResult:
    return validate("sources", f"sources {cfg!r}", source_checks(cfg), source_frame(rows), rows)


def build_data_docs(out_dir: Path) -> str | None:
    """Render every validation this process ran into out_dir; returns the index URL."""
    ctx, _ = _context()
    site = "capflow-" + str(abs(hash(str(out_dir.resolve()))) % 10**8)
    with _GX_LOCK:
        if site not in (ctx.get_config().data_docs_sites or {}):
            ctx.add_data_docs_site(
                site_name=site,
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(out_dir.resolve()),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        urls = ctx.build_data_docs(site_names=[site])
    from quality.docs_offline import make_offline

    make_offline(out_dir.resolve())  # no CDN: the pages load shipped copies
    return urls.get(site)
