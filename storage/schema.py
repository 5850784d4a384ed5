"""Arrow schemas of the LanceDB tables. Column names are a contract: other tools read them."""

from __future__ import annotations

import pyarrow as pa

CLIPS = "clips"
QUARANTINE = "quarantine"
LEDGER = "ledger"
CAPTION_VERSIONS = "caption_versions"

_TS = pa.timestamp("us", tz="UTC")


def clips_schema(embedding_dim: int, image_dim: int | None = None) -> pa.Schema:
    """The clips table. `image_dim` fixes the size of the CLIP image embedding (searchable);
    without a CLIP model it stays a plain, empty list column."""
    image_type = pa.list_(pa.float32(), image_dim) if image_dim else pa.list_(pa.float32())
    return pa.schema(
        [
            pa.field("clip_id", pa.string(), nullable=False),
            pa.field("bucket", pa.string(), nullable=False),
            pa.field("key", pa.string(), nullable=False),
            pa.field("etag", pa.string(), nullable=False),
            pa.field("source", pa.string()),
            pa.field("clip_index", pa.int32()),
            pa.field("start_s", pa.float64()),
            pa.field("end_s", pa.float64()),
            pa.field("duration_s", pa.float64()),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("fps", pa.float64()),
            pa.field("codec", pa.string()),
            pa.field("source_duration_s", pa.float64()),
            pa.field("motion_score", pa.float32()),
            pa.field("transitions_inside", pa.int32()),
            pa.field("aesthetic_score", pa.float32()),
            pa.field("aesthetic_scorer", pa.string()),
            pa.field("keyframe_times", pa.list_(pa.float64())),
            pa.field("keyframe_feature", pa.string()),  # "thumbnail" or "clip:<model>"
            pa.field("image_embedding", image_type),  # CLIP, when configured
            pa.field(
                "differential_captions",
                pa.list_(pa.struct([("t", pa.float64()), ("text", pa.string())])),
            ),
            pa.field("caption", pa.string()),
            pa.field("caption_model", pa.string()),
            pa.field("caption_mode", pa.string()),
            pa.field("prompt_version", pa.string()),
            pa.field("caption_seconds", pa.float64()),
            pa.field("caption_repetition", pa.float64()),
            pa.field("embedding_model", pa.string()),
            pa.field("text_embedding", pa.list_(pa.float32(), embedding_dim)),
            pa.field("pipeline_version", pa.string()),
            pa.field("run_id", pa.string()),
            pa.field("created_at", _TS),
        ]
    )


QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("quarantine_id", pa.string(), nullable=False),
        pa.field("bucket", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("etag", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("score", pa.float64()),
        pa.field("pipeline_version", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("created_at", _TS),
    ]
)

LEDGER_SCHEMA = pa.schema(
    [
        pa.field("ledger_id", pa.string(), nullable=False),
        pa.field("bucket", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("etag", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("last_modified", _TS),
        pa.field("status", pa.string()),
        pa.field("clips", pa.int32()),
        pa.field("pipeline_version", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("error", pa.string()),
        pa.field("updated_at", _TS),
    ]
)

CAPTION_VERSIONS_SCHEMA = pa.schema(
    [
        pa.field("version_id", pa.string(), nullable=False),
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("caption_model", pa.string()),
        pa.field("prompt_version", pa.string()),
        pa.field("caption_mode", pa.string()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("caption", pa.string()),
        pa.field(
            "differential_captions",
            pa.list_(pa.struct([("t", pa.float64()), ("text", pa.string())])),
        ),
        pa.field("run_id", pa.string()),
        pa.field("created_at", _TS),
    ]
)
