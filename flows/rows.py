"""The rows that land, read off the records: one per clip, one per refusal. Plain data."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from storage.records import ClipRecord
from storage.schema import CaptionVersionRow, ClipRow, QuarantineRow
from storage.types import Caption, DiffCaption, ObjectRef, Rejection, stable_id
from tasks.caption_text import repetition_ratio

_CLIP_COLUMNS = {f.name for f in dataclasses.fields(ClipRow)} - {"extra"}


def image_embedding(clip: ClipRecord) -> list[float] | None:
    """The clip's visual embedding: the normalised mean of its keyframes' CLIP embeddings
    (the same ones that chose them); None where no CLIP model is configured."""
    feats = [k.feature for k in clip.keyframes if k.feature_name.startswith("clip:")]
    if not feats or len(feats) != len(clip.keyframes):
        return None
    mean = np.mean(np.stack(feats), axis=0)
    return (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32).tolist()


def transitions_inside(clip: ClipRecord) -> int:
    video = clip.video
    start, end = clip.span.start_s, clip.span.end_s
    return sum(
        1 for t in (video.transitions if video else []) if t.end_s >= start and t.start_s < end
    )


def clip_row(clip: ClipRecord, embedding_model: str, pipeline_version: str, run_id: str) -> ClipRow:
    """A captioned, embedded clip as its clips-table row. Scores the stages recorded go
    into their columns: a core column by name, any other into the stage's own column."""
    video, caption = clip.video, clip.caption
    if video is None or video.probe is None or caption is None:
        raise ValueError("a clip row needs the clip's probed video and its caption")
    obj, probe, span = video.obj, video.probe, clip.span
    row = ClipRow(
        clip_id=clip.clip_id,
        bucket=obj.bucket,
        key=obj.key,
        etag=obj.etag,
        source=obj.uri,
        clip_index=span.index,
        start_s=span.start_s,
        end_s=span.end_s,
        duration_s=round(span.duration_s, 3),
        num_frames=clip.num_frames,
        width=probe.display_size[0],  # as shown: a phone's portrait video is portrait
        height=probe.display_size[1],
        fps=probe.fps,
        codec=probe.codec,
        source_duration_s=video.decoded_duration_s or probe.duration_s,
        motion_score=span.motion_score,
        transitions_inside=transitions_inside(clip),
        keyframe_times=[k.t for k in clip.keyframes],
        keyframe_feature=clip.keyframes[0].feature_name if clip.keyframes else "",
        image_embedding=image_embedding(clip),
        differential_captions=[{"t": d.t, "text": d.text} for d in caption.differential],
        caption=caption.text,
        caption_model=caption.model,
        caption_mode=caption.mode,
        prompt_version=caption.prompt_version,
        caption_seconds=caption.seconds,
        caption_repetition=repetition_ratio(caption.text),
        embedding_model=embedding_model,
        text_embedding=clip.embedding,
        pipeline_version=pipeline_version,
        run_id=run_id,
        created_at=datetime.now(UTC),
    )
    for name, value in clip.scores.items():
        if name in _CLIP_COLUMNS:
            setattr(row, name, value)
        else:
            row.extra[name] = value
    return row


def quarantine_row(
    obj: ObjectRef, rejection: Rejection, pipeline_version: str, run_id: str
) -> QuarantineRow:
    span = rejection.span
    return QuarantineRow(
        quarantine_id=stable_id(
            obj.bucket, obj.key, obj.etag, rejection.stage, str(rejection.reason), span
        ),
        bucket=obj.bucket,
        key=obj.key,
        etag=obj.etag,
        source=obj.uri,
        stage=rejection.stage,
        reason=str(rejection.reason),
        detail=rejection.detail[:2000],
        start_s=span[0] if span else None,
        end_s=span[1] if span else None,
        score=rejection.score,
        pipeline_version=pipeline_version,
        run_id=run_id,
        created_at=datetime.now(UTC),
    )


def caption_version_row(
    clip: Mapping[str, Any],
    caption: Caption | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    run_id: str | None = None,
) -> CaptionVersionRow:
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
    return CaptionVersionRow(
        version_id=stable_id(clip["clip_id"], model, version, mode, round(start, 3), round(end, 3)),
        clip_id=clip["clip_id"],
        caption_model=model,
        prompt_version=version,
        caption_mode=mode,
        start_s=start,
        end_s=end,
        caption=text,
        differential_captions=steps,
        run_id=run_id or clip.get("run_id", ""),
        created_at=datetime.now(UTC),
    )


def steps_of(clip: Mapping[str, Any]) -> list[DiffCaption]:
    return [DiffCaption(float(d["t"]), d["text"]) for d in clip["differential_captions"] or []]
