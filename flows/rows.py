"""Build the rows that land: one per clip, one per quarantined thing. Plain data only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from storage.types import (
    Caption,
    DiffCaption,
    ObjectRef,
    ProbeInfo,
    Rejection,
    ScoredClip,
    clip_id,
    stable_id,
)
from tasks.caption_text import repetition_ratio


def image_embedding(clip: ScoredClip) -> list[float] | None:
    """The clip's visual embedding: the normalised mean of its keyframes' CLIP embeddings
    (the same ones that chose them); None where no CLIP model is configured."""
    feats = [k.feature for k in clip.keyframes if k.feature_name.startswith("clip:")]
    if not feats or len(feats) != len(clip.keyframes):
        return None
    mean = np.mean(np.stack(feats), axis=0)
    return (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32).tolist()


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
        "width": probe.display_size[0],  # as shown: a phone's portrait video is portrait
        "height": probe.display_size[1],
        "fps": probe.fps,
        "codec": probe.codec,
        "source_duration_s": probe.duration_s,
        "motion_score": span.motion_score,
        "aesthetic_score": clip.aesthetic_score,
        "aesthetic_scorer": clip.aesthetic_scorer,
        "keyframe_times": [k.t for k in clip.keyframes],
        "keyframe_feature": clip.keyframes[0].feature_name,
        "image_embedding": image_embedding(clip),
        "differential_captions": [{"t": d.t, "text": d.text} for d in caption.differential],
        "caption": caption.text,
        "caption_model": caption.model,
        "caption_mode": caption.mode,
        "prompt_version": caption.prompt_version,
        "caption_seconds": caption.seconds,
        "caption_repetition": repetition_ratio(caption.text),
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


def caption_version_row(
    clip: dict[str, Any],
    caption: Caption | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A row of `caption_versions`: one per (clip, model, prompt version, mode, span), so a
    re-caption with another model or prompt adds a version instead of overwriting."""
    if caption is None:  # the caption the clip landed with
        text, model, mode, version = (
            clip["caption"],
            clip["caption_model"],
            clip["caption_mode"],
            clip["prompt_version"],
        )
        steps = clip["differential_captions"]
    else:
        text, model, mode, version = (
            caption.text,
            caption.model,
            caption.mode,
            caption.prompt_version,
        )
        steps = [{"t": d.t, "text": d.text} for d in caption.differential]
    start = clip["start_s"] if start_s is None else start_s
    end = clip["end_s"] if end_s is None else end_s
    return {
        "version_id": stable_id(
            clip["clip_id"], model, version, mode, round(start, 3), round(end, 3)
        ),
        "clip_id": clip["clip_id"],
        "caption_model": model,
        "prompt_version": version,
        "caption_mode": mode,
        "start_s": start,
        "end_s": end,
        "caption": text,
        "differential_captions": steps,
        "run_id": run_id or clip.get("run_id", ""),
        "created_at": datetime.now(UTC),
    }


def steps_of(clip: dict[str, Any]) -> list[DiffCaption]:
    return [DiffCaption(float(d["t"]), d["text"]) for d in clip["differential_captions"] or []]
