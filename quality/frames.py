"""Rows to the DataFrames the suites read: the stored columns plus derived ones.

Derived columns turn per-row facts that GX cannot compute itself (word counts, ordering
of nested lists, embedding norms, how many clips of one source video share a caption) into
plain columns, so every check is a GX expectation and shows in Data Docs. No derived
column depends on which other objects share the batch: a clip's fate is the same whatever
the batch sizes, partitions or resume points of a run.
"""

from __future__ import annotations

import html
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd


def _increasing(values: Sequence[float]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def _keyframes_ok(row: dict[str, Any]) -> bool:
    times = list(row.get("keyframe_times") or [])
    start, end = row.get("start_s"), row.get("end_s")
    if not times or start is None or end is None:
        return False
    return _increasing(times) and all(start - 0.05 <= t <= end for t in times)


def _embedding_stats(vec: Sequence[float] | None) -> tuple[int, bool, float]:
    if vec is None:
        return 0, False, float("nan")
    values = [float(x) for x in vec]
    finite = all(math.isfinite(x) for x in values)
    norm = math.sqrt(sum(x * x for x in values)) if finite else float("nan")
    return len(values), finite, norm


def inert_text(text: str) -> str:
    """Model output as GX may show it: Data Docs put column values into HTML unescaped
    (great-expectations 1.24), so markup is escaped here. Apostrophes stay: the
    boilerplate checks read them, and the pages quote attributes with double quotes."""
    return html.escape(text, quote=False).replace('"', "&quot;")


def clip_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    captions = [r.get("caption") for r in rows]
    # A model stuck on one caption shows as many clips of one video saying the same thing;
    # byte-identical uploads under other keys are duplicates, not a stuck model.
    sources = [r.get("source") or r.get("key") for r in rows]
    shared = Counter((s, c.strip().lower()) for s, c in zip(sources, captions, strict=True) if c)
    stats = [_embedding_stats(r.get("text_embedding")) for r in rows]
    return pd.DataFrame(
        {
            "clip_id": [r.get("clip_id") for r in rows],
            "duration_s": [r.get("duration_s") for r in rows],
            "transitions_inside": [r.get("transitions_inside", 0) for r in rows],
            "aesthetic_score": [r.get("aesthetic_score") for r in rows],
            "motion_score": [r.get("motion_score") for r in rows],
            "keyframes_ok": [_keyframes_ok(r) for r in rows],
            "caption": [inert_text(c) if c else c for c in captions],
            "caption_words": [len(c.split()) if c else 0 for c in captions],
            "caption_repetition": [r.get("caption_repetition", 0.0) for r in rows],
            "caption_shared_by": [
                shared[(s, c.strip().lower())] if c else 0
                for s, c in zip(sources, captions, strict=True)
            ],
            "differential_ok": [
                _increasing([d["t"] for d in r.get("differential_captions") or []]) for r in rows
            ],
            "embedding_dim": [s[0] for s in stats],
            "embedding_finite": [s[1] for s in stats],
            "embedding_norm": [s[2] for s in stats],
        }
    )


def source_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    columns = ["has_video_stream", "decoded_frames", "duration_s", "fps", "width", "height"]
    return pd.DataFrame({c: [r.get(c) for r in rows] for c in columns})
