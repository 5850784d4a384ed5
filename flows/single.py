"""One local video through the same stages as the pipeline, outside any flow.

`capflow caption`, `capflow score` and `capflow detect` take the whole video as one clip
and run the run config's stage list on it (`measure`: every stage runs and says its
verdict, none stops the others), so a stage added to the list shows up here too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flows.config import RunConfig
from storage.records import ClipRecord, VideoRecord
from storage.types import ClipSpan, ObjectRef, ProbeInfo, Rejection, RejectReason, ShotAnalysis
from tasks.clips import frame_step, shot_ranges
from tasks.probe import probe_video
from tasks.transitions import analyse_shots


class StageRejected(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"{rejection.stage}: {rejection.reason} ({rejection.detail})")
        self.rejection = rejection


def probe_and_analyse(path: Path, config: RunConfig) -> tuple[ProbeInfo, ShotAnalysis]:
    """Probe and the one decode pass, or StageRejected with the stage's reason."""
    probe = probe_video(path, config.probe)
    if isinstance(probe, Rejection):
        raise StageRejected(probe)
    analysis = analyse_shots(path, probe, config.transitions)
    if isinstance(analysis, Rejection):
        raise StageRejected(analysis)
    return probe, analysis


def whole_video(path: Path, config: RunConfig) -> ClipRecord:
    """The whole video as one clip (with its motion track, for the describer), through
    every stage of the run config's list."""
    probe, analysis = probe_and_analyse(path, config)
    times = analysis.times
    track = tuple((t, v[0], v[1]) for t, v in zip(times, analysis.velocity, strict=True))
    motion = sum(analysis.motion) / len(analysis.motion)
    span = ClipSpan(0, times[0], times[-1] + frame_step(times), round(motion, 5), track)
    local = ObjectRef("local", str(path), "", Path(path).stat().st_size, _mtime(path))
    video = VideoRecord(local, path=Path(path), probe=probe, transitions=analysis.transitions)
    clip = video.add_clip(span, len(times))
    from tasks.stages import run_stages

    run_stages(clip, config.clip_stages(), measure=True)
    if not clip.keyframes:  # nothing to show or caption without them
        raise StageRejected(
            clip.rejection or Rejection("keyframes", RejectReason.DECODE_FAILED, "no keyframes")
        )
    return clip


def _mtime(path: Path) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)


def caption_video(path: Path, config: RunConfig) -> dict[str, Any]:
    """Caption a whole local video; the JSON shape `capflow caption --json` prints."""
    from tasks.caption import caption_clips, load_captioner

    clip = whole_video(path, config)
    clip.rejection = None  # a filter's verdict does not stop a caption asked for by hand
    [result] = caption_clips([clip], load_captioner(config.caption))
    if isinstance(result, Rejection):
        raise StageRejected(result)
    return {
        "mode": result.mode,
        "captioner": result.model,
        "keyframes": [{"t": k.t} for k in clip.keyframes],
        "differential_captions": [{"t": d.t, "text": d.text} for d in result.differential],
        "caption": result.text,
    }


def score_video(path: Path, config: RunConfig) -> dict[str, Any]:
    """Every stage's scores and verdict on a whole local video; `capflow score --json`'s
    shape (the aesthetic stage also scores each keyframe)."""
    clip = whole_video(path, config)
    per_keyframe = clip.notes.get("aesthetic", [])
    return {
        "scorer": clip.scores.get("aesthetic_scorer"),
        "clip_score": round(float(clip.scores.get("aesthetic_score") or 0.0), 4),
        "keyframes": [
            {"t": k.t, **({"score": s} if s is not None else {})}
            for k, s in zip(
                clip.keyframes, per_keyframe or [None] * len(clip.keyframes), strict=True
            )
        ],
        # scalars only: the duplicates stage's fingerprint is 192 numbers nobody reads
        "scores": {k: v for k, v in clip.scores.items() if not isinstance(v, list | tuple)},
        "verdicts": clip.notes.get("verdicts", {}),
    }


def detect_video(video: str, config: RunConfig) -> dict[str, Any]:
    """`capflow detect --json`'s shape for a local path or an s3://bucket/key URL."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(video)
        if video.startswith("s3://"):
            path = _download_url(video, Path(tmp) / "input", config)
        probe, analysis = probe_and_analyse(path, config)
    times = analysis.times
    step = frame_step(times)
    return {
        "video": video,
        "fps": round(probe.fps, 6),
        "frame_count": len(times),
        "duration_s": round(times[-1] + step, 6),
        "transitions": [
            {
                "type": t.kind,
                "start_frame": t.start_frame,
                "end_frame": t.end_frame,
                "start_s": round(t.start_s, 6),
                "end_s": round(t.end_s, 6),
                "score": t.score,
            }
            for t in analysis.transitions
        ],
        "shots": [
            {
                "start_frame": a,
                "end_frame": b,
                "start_s": round(times[a], 6),
                "end_s": round(times[b] + step, 6),
            }
            for a, b in shot_ranges(analysis)
        ],
    }


def _download_url(url: str, dest: Path, config: RunConfig) -> Path:
    from storage.s3 import download_object, make_client

    bucket, _, key = url.removeprefix("s3://").partition("/")
    client = make_client(config.s3.options())
    head = client.head_object(Bucket=bucket, Key=key)
    obj = ObjectRef(
        bucket, key, head["ETag"].strip('"'), head["ContentLength"], head["LastModified"]
    )
    result = download_object(client, obj, dest)
    if isinstance(result, Rejection):
        raise StageRejected(result)
    return result
