"""Build the rows that land: one per clip, one per quarantined thing. Plain data only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from storage.types import (
    Caption,
    ObjectRef,
    ProbeInfo,
    Rejection,
    ScoredClip,
    clip_id,
    stable_id,
)


def clip_row(
    obj: ObjectRef,
    probe: ProbeInfo,
    clip: ScoredClip,
    caption: Caption,
    embedding: list[float],
    embedding_model: str,
    pipeline_version: str,
    run_id: str,
) -> dict[str, Any]:
    span = clip.span
    return {
        "clip_id": clip_id(obj, span),
        "bucket": obj.bucket,
        "key": obj.key,
        "etag": obj.etag,
        "source": obj.uri,
        "clip_index": span.index,
        "start_s": span.start_s,
        "end_s": span.end_s,
        "duration_s": round(span.duration_s, 3),
        "width": probe.width,
        "height": probe.height,
        "fps": probe.fps,
        "codec": probe.codec,
        "source_duration_s": probe.duration_s,
        "motion_score": span.motion_score,
        "aesthetic_score": clip.aesthetic_score,
        "aesthetic_scorer": clip.aesthetic_scorer,
        "keyframe_times": [k.t for k in clip.keyframes],
        "differential_captions": [{"t": d.t, "text": d.text} for d in caption.differential],
        "caption": caption.text,
        "caption_model": caption.model,
        "caption_mode": caption.mode,
        "prompt_version": caption.prompt_version,
        "embedding_model": embedding_model,
        "text_embedding": embedding,
        "pipeline_version": pipeline_version,
        "run_id": run_id,
        "created_at": datetime.now(UTC),
    }


def quarantine_row(
    obj: ObjectRef, rejection: Rejection, pipeline_version: str, run_id: str
) -> dict[str, Any]:
    span = rejection.span
    return {
        "quarantine_id": stable_id(
            obj.bucket, obj.key, obj.etag, rejection.stage, str(rejection.reason), span
        ),
        "bucket": obj.bucket,
        "key": obj.key,
        "etag": obj.etag,
        "source": obj.uri,
        "stage": rejection.stage,
        "reason": str(rejection.reason),
        "detail": rejection.detail[:2000],
        "start_s": span[0] if span else None,
        "end_s": span[1] if span else None,
        "score": rejection.score,
        "pipeline_version": pipeline_version,
        "run_id": run_id,
        "created_at": datetime.now(UTC),
    }
