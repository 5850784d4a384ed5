"""The LanceDB tables, one definition each: a row dataclass, from which the Arrow schema comes.

Column names are a contract (other tools read them). A row's fields are its columns; each
field says its Arrow type with `col(...)`, and a vector column names the dimension it takes
from the run (`vector("embedding_dim")`). The clips table also takes the columns that the
configured clip stages declare (`extra`), so a new stage adds its score columns without
touching this file; a table that lacks them gains them by an explicit schema-evolution step
(storage/lance_store.py), never by a silent drop.

Each table's key is its unenforced primary key in Lance: concurrent `merge_insert`s that
insert the same new key then conflict and retry instead of both committing (lance #4585,
proven for this pylance against SeaweedFS in tests/storage/test_concurrent_writers.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

CLIPS = "clips"
QUARANTINE = "quarantine"
LEDGER = "ledger"
CAPTION_VERSIONS = "caption_versions"

PRIMARY_KEY_META = b"lance-schema:unenforced-primary-key:position"
_TS = pa.timestamp("us", tz="UTC")
_STEPS = pa.list_(pa.struct([("t", pa.float64()), ("text", pa.string())]))


class SchemaMismatch(ValueError):
    """Rows and a table disagree in a way no evolution step can fix."""


@dataclass(frozen=True)
class Column:
    """A column's Arrow type, or the name of the run dimension that sizes a vector column."""

    type: pa.DataType | None = None
    vector_dim: str | None = None
    nullable: bool = True

    def arrow(self, dims: Mapping[str, int | None]) -> pa.DataType:
        if self.type is not None:
            return self.type
        size = dims.get(self.vector_dim or "")
        # Without a size (no CLIP model configured) the column stays a plain list.
        return pa.list_(pa.float32(), size) if size else pa.list_(pa.float32())


def col(arrow_type: pa.DataType, *, nullable: bool = True, default: Any = None) -> Any:
    return field(default=default, metadata={"column": Column(arrow_type, nullable=nullable)})


def key_col() -> Any:
    return field(metadata={"column": Column(pa.string(), nullable=False)})


def vector(dim: str) -> Any:
    return field(default=None, metadata={"column": Column(vector_dim=dim)})


@dataclass(frozen=True)
class Table:
    """One table: its name, its row type and its key."""

    name: str
    row: type
    key: str

    def columns(self) -> list[tuple[str, Column]]:
        return [
            (f.name, f.metadata["column"])
            for f in dataclasses.fields(self.row)
            if "column" in f.metadata
        ]

    def schema(
        self, dims: Mapping[str, int | None] | None = None, extra: Sequence[pa.Field] = ()
    ) -> pa.Schema:
        fields = []
        for name, c in self.columns():
            meta = {PRIMARY_KEY_META: b"1"} if name == self.key else None
            fields.append(pa.field(name, c.arrow(dims or {}), nullable=c.nullable, metadata=meta))
        return pa.schema(fields + list(extra))

    def record(self, row: Any) -> dict[str, Any]:
        """A row as a plain mapping of column -> value (stage columns flattened in)."""
        if isinstance(row, Mapping):
            return dict(row)
        out = {name: getattr(row, name) for name, _ in self.columns()}
        out.update(getattr(row, "extra", None) or {})
        return out


@dataclass
class ClipRow:
    clip_id: str = key_col()
    bucket: str = col(pa.string(), nullable=False, default="")
    key: str = col(pa.string(), nullable=False, default="")
    etag: str = col(pa.string(), nullable=False, default="")
    source: str = col(pa.string())
    clip_index: int = col(pa.int32())
    start_s: float = col(pa.float64())
    end_s: float = col(pa.float64())
    duration_s: float = col(pa.float64())
    num_frames: int | None = col(pa.int32())  # decoded frames inside the span
    width: int = col(pa.int32())
    height: int = col(pa.int32())
    fps: float = col(pa.float64())
    codec: str = col(pa.string())
    source_duration_s: float = col(pa.float64())  # as decoded, not as the container claims
    motion_score: float = col(pa.float32())
    transitions_inside: int = col(pa.int32(), default=0)
    aesthetic_score: float | None = col(pa.float32())
    aesthetic_scorer: str | None = col(pa.string())
    keyframe_times: list[float] = col(pa.list_(pa.float64()))
    keyframe_feature: str = col(pa.string())  # "thumbnail" or "clip:<model>"
    image_embedding: list[float] | None = vector("image_dim")  # CLIP, when configured
    differential_captions: list[dict[str, Any]] = col(_STEPS)
    caption: str = col(pa.string())
    caption_model: str = col(pa.string())
    caption_mode: str = col(pa.string())
    prompt_version: str = col(pa.string())
    caption_seconds: float = col(pa.float64())
    caption_repetition: float = col(pa.float64())
    embedding_model: str = col(pa.string())
    text_embedding: list[float] | None = vector("embedding_dim")
    pipeline_version: str = col(pa.string())
    run_id: str = col(pa.string())
    created_at: datetime | None = col(_TS)
    clip_uri: str | None = col(pa.string())  # the clip's own file, where media.uri is set
    thumbnail_uri: str | None = col(pa.string())
    preview_uri: str | None = col(pa.string())
    encode_settings: str | None = col(pa.string())
    extra: dict[str, Any] = field(default_factory=dict)  # the clip stages' own columns


@dataclass
class QuarantineRow:
    quarantine_id: str = key_col()
    bucket: str = col(pa.string(), nullable=False, default="")
    key: str = col(pa.string(), nullable=False, default="")
    etag: str = col(pa.string(), nullable=False, default="")
    source: str = col(pa.string())
    stage: str = col(pa.string())
    reason: str = col(pa.string())
    detail: str = col(pa.string())
    start_s: float | None = col(pa.float64())
    end_s: float | None = col(pa.float64())
    score: float | None = col(pa.float64())
    pipeline_version: str = col(pa.string())
    run_id: str = col(pa.string())
    created_at: datetime | None = col(_TS)


@dataclass
class LedgerRow:
    ledger_id: str = key_col()
    bucket: str = col(pa.string(), nullable=False, default="")
    key: str = col(pa.string(), nullable=False, default="")
    etag: str = col(pa.string(), nullable=False, default="")
    size: int = col(pa.int64())
    last_modified: datetime | None = col(_TS)
    status: str = col(pa.string())
    clips: int = col(pa.int32())
    pipeline_version: str = col(pa.string())
    run_id: str = col(pa.string())
    error: str = col(pa.string())
    updated_at: datetime | None = col(_TS)


@dataclass
class CaptionVersionRow:
    version_id: str = key_col()
    clip_id: str = col(pa.string(), nullable=False, default="")
    caption_model: str = col(pa.string())
    prompt_version: str = col(pa.string())
    caption_mode: str = col(pa.string())
    start_s: float = col(pa.float64())
    end_s: float = col(pa.float64())
    caption: str = col(pa.string())
    differential_captions: list[dict[str, Any]] = col(_STEPS)
    run_id: str = col(pa.string())
    created_at: datetime | None = col(_TS)


CLIPS_TABLE = Table(CLIPS, ClipRow, "clip_id")
QUARANTINE_TABLE = Table(QUARANTINE, QuarantineRow, "quarantine_id")
LEDGER_TABLE = Table(LEDGER, LedgerRow, "ledger_id")
CAPTION_VERSIONS_TABLE = Table(CAPTION_VERSIONS, CaptionVersionRow, "version_id")
TABLES = {t.name: t for t in (CLIPS_TABLE, QUARANTINE_TABLE, LEDGER_TABLE, CAPTION_VERSIONS_TABLE)}


def clips_schema(embedding_dim: int, image_dim: int | None = None) -> pa.Schema:
    """The clips table's Arrow schema for a run's embedding sizes (the stage columns aside)."""
    return CLIPS_TABLE.schema({"embedding_dim": embedding_dim, "image_dim": image_dim})
