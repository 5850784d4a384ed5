"""Near-duplicates at landing: new clips against the table and against each other.

The rule (tasks/duplicates.py `first_match`) depends only on which clips exist, so the
marks must follow the set: a new clip that comes first in stable order takes the mark off
the clips that matched something later and puts it on them; a clip that leaves (pruned,
replaced) frees the clips that pointed at it. Both are re-decided here, by the same
function that decides a new clip, with the table's nearest neighbours and the batch's.

Two writers landing copies of each other at the same instant do not see each other's
rows; the next landing that touches either sets them right. That is the one place where
the marks can lag the set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from storage import schema
from storage.lance_store import LanceStore, objects_predicate, sql_str
from storage.schema import ClipRow
from tasks.duplicates import FINGERPRINT_COLUMN, Candidate, DuplicatesConfig, Match, first_match

_READ = ["clip_id", "bucket", "key", "start_s"]


@dataclass
class Marks:
    """What the check decided: the new rows' marks (set on them) and the table rows to
    change (clip id -> match, or None to clear)."""

    column: str = ""
    new: dict[str, Match | None] = field(default_factory=dict)
    existing: dict[str, Match | None] = field(default_factory=dict)


def _candidate(r: Any) -> Candidate:
    get = r.get if isinstance(r, dict) else lambda name: getattr(r, name)
    return Candidate(get("clip_id"), get("bucket"), get("key"), float(get("start_s")))


def _vector(row: ClipRow, column: str) -> np.ndarray | None:
    value = row.image_embedding if column == "image_embedding" else row.extra.get(column)
    return None if value is None else np.asarray(value, dtype=np.float32)


def choose_column(rows: Sequence[ClipRow]) -> str:
    """CLIP's image embedding where the run has one, the fingerprint otherwise."""
    return (
        "image_embedding" if rows and all(r.image_embedding for r in rows) else FINGERPRINT_COLUMN
    )


class DuplicateCheck:
    """One landing's check against one store."""

    def __init__(self, store: LanceStore, config: DuplicatesConfig) -> None:
        self.store = store
        self.config = config

    def _has(self, column: str) -> bool:
        table = self.store.open_table(schema.CLIPS)
        return table is not None and column in table.schema.names

    def _table_neighbours(
        self, column: str, vectors: Sequence[np.ndarray], excluded: Sequence[tuple[str, str]]
    ) -> list[list[tuple[Candidate, float]]]:
        """Each vector's nearest clips in the table, in one query for all of them (LanceDB
        takes many query vectors at once), by an exact scan up to
        `exact_search_max_rows`: at 100k rows 3.9 ms a clip, against 21 ms through the
        IVF_HNSW_SQ index and 26 ms one query per clip (benchmarks/duplicates.py)."""
        out: list[list[tuple[Candidate, float]]] = [[] for _ in vectors]
        table = self.store.open_table(schema.CLIPS)
        if not vectors or table is None or column not in table.schema.names:
            return out
        where = f"{column} IS NOT NULL"
        if excluded:
            where += f" AND NOT ({objects_predicate(excluded)})"
        query = [v.tolist() for v in vectors]
        search = (
            table.search(query if len(query) > 1 else query[0], vector_column_name=column)
            .distance_type("cosine")
            .where(where, prefilter=True)
            .select([*_READ, "_distance"])
            .limit(self.config.neighbours)
        )
        if table.count_rows() <= self.config.exact_search_max_rows:
            search = search.bypass_vector_index()  # exact, and faster than the index here
        hits = search.to_list()
        for h in hits:
            out[int(h.get("query_index", 0))].append((_candidate(h), 1.0 - float(h["_distance"])))
        return out

    def mark(self, rows: Sequence[ClipRow], replaced: Sequence[tuple[str, str]]) -> Marks:
        """Decide the batch's rows (the objects in `replaced` are about to be rewritten,
        so their rows in the table do not count) and the table rows they change."""
        column = choose_column(rows)
        marks = Marks(column)
        threshold = self.config.threshold(column)
        new = [(r, _candidate(r), _vector(r, column)) for r in rows]
        new = [(r, c, v) for r, c, v in new if v is not None]
        if not new:
            return marks
        matrix = np.stack([v for _, _, v in new])
        sims = matrix @ matrix.T
        affected: dict[str, Candidate] = {}
        table_neighbours = self._table_neighbours(column, [v for _, _, v in new], replaced)
        for i, ((_, clip, _), from_table) in enumerate(zip(new, table_neighbours, strict=True)):
            from_batch = [(new[j][1], float(sims[i, j])) for j in range(len(new)) if j != i]
            match = first_match(clip, from_table + from_batch, threshold, self.config.within_object)
            marks.new[clip.clip_id] = match
            for n, s in from_table:  # table clips this one now comes before
                if s >= threshold and clip.order < n.order:
                    affected[n.clip_id] = n
        for n in affected.values():
            marks.existing[n.clip_id] = self._redecide(n, column, replaced, new)
        return marks

    def _redecide(
        self,
        clip: Candidate,
        column: str,
        replaced: Sequence[tuple[str, str]],
        new: Sequence[tuple[ClipRow, Candidate, np.ndarray]] = (),
    ) -> Match | None:
        rows = self.store.rows(
            schema.CLIPS, f"clip_id = {sql_str(clip.clip_id)}", [column, "clip_id"]
        )
        if not rows or rows[0][column] is None:
            return None
        vector = np.asarray(rows[0][column], dtype=np.float32)
        [neighbours] = self._table_neighbours(column, [vector], replaced)
        neighbours += [(c, float(v @ vector)) for _, c, v in new]
        return first_match(
            clip, neighbours, self.config.threshold(column), self.config.within_object
        )

    def freed(self, gone: Iterable[str], column: str = "") -> dict[str, Match | None]:
        """Clips that pointed at clips now gone, re-decided against what is left."""
        gone = sorted(set(gone))
        if not gone or not self._has("duplicate_of"):
            return {}
        ids = ", ".join(sql_str(i) for i in gone)
        pointing = self.store.rows(
            schema.CLIPS, f"duplicate_of IN ({ids})", [*_READ, "image_embedding"]
        )
        out = {}
        for r in pointing:
            col = column or ("image_embedding" if r.get("image_embedding") else FINGERPRINT_COLUMN)
            out[r["clip_id"]] = self._redecide(_candidate(r), col, ())
        return out


def apply_marks(rows: Sequence[ClipRow], marks: Marks) -> None:
    """The batch's decisions onto its rows (before they are written)."""
    for row in rows:
        match = marks.new.get(row.clip_id)
        row.extra["duplicate_of"] = match.of if match else None
        row.extra["duplicate_similarity"] = match.similarity if match else None
