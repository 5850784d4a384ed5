"""Preparation: one object from its bytes to clips ready to caption, as one VideoRecord.

download -> probe (every stream; the source bounds before any decode) -> transitions (one
streamed decode) -> sources gate -> clips -> the per-clip stage list, in config order. Bad
media ends as rejections on the record; an infrastructure fault raises, and Prefect
retries the task. The stages run as plain calls inside one task run per object, which
keeps Prefect's per-task cost small next to the work.
"""

from __future__ import annotations

import bisect
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.config import RunConfig
from quality.config import precheck_source
from storage.local import is_local_bucket, open_local
from storage.manifest import MISSING
from storage.records import VideoRecord
from storage.s3 import download_object, make_client
from storage.types import ObjectRef, ProbeInfo, Rejection, RejectReason, ShotAnalysis
from tasks.clips import cut_clips, frame_step
from tasks.probe import probe_video
from tasks.stages import ClipStage, run_stages
from tasks.transitions import analyse_shots


def _worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Infrastructure faults are retried; a run that is stopping is not."""
    from tasks.media import MediaStopped

    try:
        state.result()
    except MediaStopped:
        return False
    except Exception:
        return True
    return True


RETRY = {
    "retries": 2,
    "retry_delay_seconds": 2,
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": _worth_retrying,
}


class StageClock:
    """Seconds spent per stage, summed: the run report's time per stage. Each stage's
    start is also a progress event, so a long video shows where it is."""

    def __init__(self, uri: str = "") -> None:
        self.seconds: Counter[str] = Counter()
        self.uri = uri

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        progress.emit("stage", f"{stage} {self.uri}")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - started


def source_row(probe: ProbeInfo, analysis: ShotAnalysis) -> dict[str, Any]:
    """What the sources suite checks: the decoded facts, not the container's claims."""
    times = analysis.times
    return {
        "has_video_stream": True,
        "decoded_frames": len(times),
        "duration_s": times[-1] - times[0] + frame_step(times) if times else 0.0,
        "fps": probe.fps,
        "width": probe.display_size[0],
        "height": probe.display_size[1],
    }


def prepare_video(obj: ObjectRef, config: RunConfig, stages: Sequence[ClipStage]) -> VideoRecord:
    """The object's record after every CPU stage, its local copy deleted again."""
    clock = StageClock(obj.uri)
    video = VideoRecord(obj)
    try:
        _prepare(video, config, stages, clock)
    finally:
        video.path = None
        video.seconds = {k: round(v, 4) for k, v in clock.seconds.items()}
    return video


def _prepare(
    video: VideoRecord, config: RunConfig, stages: Sequence[ClipStage], clock: StageClock
) -> None:
    obj = video.obj
    if obj.etag == MISSING:  # a manifest's entry that is not there
        video.rejections.append(
            Rejection("download", RejectReason.SOURCE_MISSING, "in the manifest, not in storage")
        )
        return
    if obj.size == 0:  # nothing to download or decode
        video.rejections.append(Rejection("download", RejectReason.EMPTY_OBJECT, "zero bytes"))
        return
    tmp_root = Path(config.workdir) / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        # A fixed local name: the key is data, never part of a path or a command.
        with clock.time("download"):
            if is_local_bucket(obj.bucket):  # read in place: nothing to download
                local = open_local(obj)
            else:
                local = download_object(make_client(config.s3.options()), obj, Path(tmp) / "input")
        if isinstance(local, Rejection):
            video.rejections.append(local)
            return
        video.path = local
        with clock.time("probe"):
            probe = probe_video(local, config.probe)
        if isinstance(probe, Rejection):
            video.rejections.append(probe)
            return
        video.probe = probe
        refused = precheck_source(probe, config.quality)
        if refused:
            video.rejections.append(refused)
            return
        with clock.time("transitions"):
            analysis = analyse_shots(local, probe, config.transitions)
        if isinstance(analysis, Rejection):
            video.rejections.append(analysis)
            return
        times = analysis.times
        video.decoded_frames = len(times)
        video.decoded_duration_s = round(times[-1] - times[0] + frame_step(times), 6)
        video.transitions = analysis.transitions
        with clock.time("gate"):
            refused = _gate_source(video, source_row(probe, analysis), config)
        if refused:
            video.rejections.append(refused)
            return
        spans = cut_clips(analysis, config.clips)
        if not spans:
            detail = f"no shot of at least {config.clips.min_clip_s} s after trimming"
            video.rejections.append(Rejection("clips", RejectReason.NO_CLIPS, detail))
        for i, span in enumerate(spans, start=1):
            frames = bisect.bisect_left(times, span.end_s) - bisect.bisect_left(times, span.start_s)
            progress.emit("stage", f"clip {i}/{len(spans)} {obj.uri}")
            run_stages(video.add_clip(span, frames), stages, clock.seconds)
        if config.media.enabled:
            with clock.time("encode"):
                stage_clip_files(video, local, times, config)


def staging_dir(config: RunConfig) -> Path:
    """Where clip files wait between preparation and landing."""
    return Path(config.workdir) / "media-staging"


def stage_clip_files(
    video: VideoRecord, source: Path, times: list[float], config: RunConfig
) -> None:
    """Cut the clips still alive to the staging folder while the source is on disk; a
    clip whose cut fails is refused (`encode_failed`), the others go on."""
    from tasks.clip_files import ClipCut, cut_clip_files

    cuts = []
    for clip in video.alive_clips():
        first = bisect.bisect_left(times, clip.span.start_s)
        count = clip.num_frames or 0
        if count <= 0 or first >= len(times):
            continue
        end = times[first + count] if first + count < len(times) else clip.span.end_s
        cuts.append((clip, ClipCut(clip.clip_id, times[first], count, end - times[first])))
    probe = video.probe
    fps = probe.fps if probe else 25.0
    stream = probe.stream_index if probe else 0
    errors = cut_clip_files(source, [c for _, c in cuts], staging_dir(config), config.media,
                            stream, fps)  # fmt: skip
    for clip, cut in cuts:
        if errors.get(cut.clip_id):
            detail = f"cutting the clip file failed: {errors[cut.clip_id]}"
            span = (clip.span.start_s, clip.span.end_s)
            clip.reject(Rejection("media", RejectReason.ENCODE_FAILED, detail[:500], span))


def _gate_source(video: VideoRecord, row: dict[str, Any], config: RunConfig) -> Rejection | None:
    from quality.gate import gate_sources

    result = gate_sources([row], config.quality)
    failed = set(result.failed[0][1]) if result.failed else set()
    video.checks = {name: name not in failed for name in result.evaluated}
    if not failed:
        return None
    names = ", ".join(result.failed[0][1])
    return Rejection("quality", RejectReason.QUALITY_FAILED, f"failed: {names}")


@task(name="prepare-object", cache_policy=NO_CACHE, **RETRY)
def prepare_object_task(obj: ObjectRef, config: RunConfig) -> VideoRecord:
    return prepare_video(obj, config, config.clip_stages())
