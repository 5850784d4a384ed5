"""One local video through the stages, outside any flow: `capflow caption` and friends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.config import RunConfig
from storage.types import ClipSpan, Keyframe, ProbeInfo, Rejection, ScoredClip
from tasks.aesthetic import aggregate, make_scorer
from tasks.caption import caption_clips, load_captioner
from tasks.keyframes import extract_keyframes
from tasks.probe import probe_video
from tasks.transitions import ShotAnalysis, analyse_shots


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


def frame_step(times: list[float]) -> float:
    """The mean frame duration: where the last frame ends."""
    return (times[-1] - times[0]) / max(1, len(times) - 1)


def whole_video_clip(path: Path, config: RunConfig) -> tuple[ClipSpan, ProbeInfo]:
    """The whole video as one clip, with its motion track (for the describer)."""
    probe, analysis = probe_and_analyse(path, config)
    times = analysis.times
    step = frame_step(times)
    track = tuple((t, v[0], v[1]) for t, v in zip(times, analysis.velocity, strict=True))
    motion = sum(analysis.motion) / len(analysis.motion)
    return ClipSpan(0, times[0], times[-1] + step, round(motion, 5), track), probe


def whole_video_keyframes(path: Path, config: RunConfig) -> tuple[ClipSpan, list[Keyframe]]:
    """The whole video as one clip, and its keyframes by the configured policy."""
    clip, probe = whole_video_clip(path, config)
    keyframes = extract_keyframes(path, probe, clip, config.keyframes)
    if isinstance(keyframes, Rejection):
        raise StageRejected(keyframes)
    return clip, keyframes


def caption_video(path: Path, config: RunConfig) -> dict[str, Any]:
    """Caption a whole local video; the JSON shape `capflow caption --json` prints."""
    clip, keyframes = whole_video_keyframes(path, config)
    captioner = load_captioner(config.caption)
    [result] = caption_clips([ScoredClip(clip, keyframes, 0.0, "none")], captioner)
    if isinstance(result, Rejection):
        raise StageRejected(result)
    return {
        "mode": result.mode,
        "captioner": result.model,
        "keyframes": [{"t": k.t} for k in keyframes],
        "differential_captions": [{"t": d.t, "text": d.text} for d in result.differential],
        "caption": result.text,
    }


def score_video(path: Path, config: RunConfig) -> dict[str, Any]:
    """Keyframes of a whole local video and their scores; `capflow score --json`'s shape."""
    _, keyframes = whole_video_keyframes(path, config)
    scorer = make_scorer(config.aesthetic)
    scores = scorer.score(keyframes)
    return {
        "scorer": scorer.name,
        "clip_score": round(aggregate(scores, config.aesthetic.aggregate), 4),
        "keyframes": [{"t": k.t, "score": s} for k, s in zip(keyframes, scores, strict=True)],
    }


def detect_video(video: str, config: RunConfig) -> dict[str, Any]:
    """`capflow detect --json`'s shape for a local path or an s3://bucket/key URL."""
    import tempfile

    from tasks.clips import shot_ranges

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
    from storage.types import ObjectRef

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
