"""The per-clip stage list: filters and scorers that run between cutting and captioning.

A stage is one object behind `ClipStage`: its name, its config (which goes into the cache
key), the score columns it adds to the clips table, the inputs it needs from earlier
stages, and a plain function from a clip record to the record (filled in place) or a
`Rejection`. Its config section builds it (`build()`), so the run config's `stages` list
and its sections are the whole registry: a new stage is one module with its config and
stage class, one reason in `RejectReason` and one config entry in flows/config.py.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

from storage.records import ClipRecord
from storage.types import Rejection


class ClipStage(Protocol):
    name: str
    config: Any
    columns: tuple[pa.Field, ...]  # score columns this stage adds to the clips table
    needs: tuple[str, ...]  # what earlier stages must provide ("keyframes")
    provides: tuple[str, ...]

    def __call__(self, clip: ClipRecord) -> ClipRecord | Rejection:
        """Fill `clip` in place and return it, or say why it goes no further."""
        ...


class StageConfig(Protocol):
    def build(self) -> ClipStage: ...


def check_order(stages: Sequence[ClipStage], final_needs: Sequence[str] = ()) -> None:
    """Every stage's inputs come from an earlier one (and the captioner's from any)."""
    provided: set[str] = set()
    for stage in stages:
        missing = [n for n in stage.needs if n not in provided]
        if missing:
            raise ValueError(
                f"stage {stage.name!r} needs {', '.join(missing)} from an earlier stage: "
                "put that stage before it in `stages`"
            )
        provided.update(stage.provides)
    missing = [n for n in final_needs if n not in provided]
    if missing:
        raise ValueError(f"captioning needs {', '.join(missing)}: add it to `stages`")


def run_stages(
    clip: ClipRecord,
    stages: Sequence[ClipStage],
    seconds: Counter[str] | None = None,
    measure: bool = False,
) -> ClipRecord:
    """Run the stages in order. A Rejection stops the clip (it is recorded on it); with
    `measure`, every stage runs anyway and each verdict lands in `clip.notes["verdicts"]`
    (what `capflow score` shows), the first refusal still being the clip's."""
    verdicts: dict[str, str] = {}
    for stage in stages:
        started = time.perf_counter()
        result = stage(clip)
        if seconds is not None:
            seconds[stage.name] += time.perf_counter() - started
        if isinstance(result, Rejection):
            clip.reject(result)
            verdicts[stage.name] = str(result.reason)
            if not measure:
                break
        else:
            verdicts[stage.name] = "pass"
    clip.notes["verdicts"] = verdicts
    return clip
