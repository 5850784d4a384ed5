"""Each clip as its own file: an MP4 cut frame-accurately from the source already on disk
for analysis, and an animated WebP preview; the thumbnail is a JPEG of a middle keyframe
(already decoded). Cut while the source is local (preparation), staged under the
workdir, and moved to the media location when the clip lands (flows/media_sink.py).

Frame-accurate: each clip's input seeks to a quarter frame before the span's first frame
(ffmpeg's input seek decodes from the keyframe before and drops what comes earlier, so
B-frames and open GOPs do not matter) and its output takes exactly the span's number of
frames, with timestamps passed through (variable frame rate stays variable). Re-encoded
with libx264 by default; `copy` cuts at keyframes instead and is never the default. The
clips of one source are cut `clips_per_process` at a time in one ffmpeg process (NVIDIA's
NeMo Curator does 16), one input per clip, so each is decoded once from its own seek.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tasks import media


@dataclass(frozen=True)
class MediaConfig:
    uri: str = ""  # a folder or s3://bucket/prefix; empty: no clip files
    codec: str = "libx264"  # or h264_nvenc where the GPU has an encoder
    crf: int = 20
    preset: str = "veryfast"
    copy: bool = False  # stream copy: cuts at keyframes, not frame-accurate
    max_side: int | None = None  # normalise for training buckets: longest side, frame rate,
    fps: float | None = None  # pixel format (None: as the source)
    pix_fmt: str = "yuv420p"
    audio: bool = True
    previews: bool = True
    preview_s: float = 3.0
    preview_side: int = 256
    preview_fps: int = 8
    thumbnail_side: int = 480
    clips_per_process: int = 16
    timeout_s: float = 600.0

    @property
    def enabled(self) -> bool:
        return bool(self.uri)

    def settings(self) -> str:
        """The encode settings as a row records them."""
        if self.copy:
            return "copy"
        parts = [self.codec, f"crf={self.crf}", f"preset={self.preset}", self.pix_fmt]
        if self.max_side:
            parts.append(f"max_side={self.max_side}")
        if self.fps:
            parts.append(f"fps={self.fps:g}")
        return " ".join(parts)


@dataclass(frozen=True)
class ClipCut:
    """One span to cut: where it starts, how many frames, how long."""

    clip_id: str
    start_s: float
    num_frames: int
    duration_s: float


def _video_filters(cfg: MediaConfig) -> list[str]:
    filters = []
    if cfg.fps:
        filters.append(f"fps={cfg.fps:g}")
    if cfg.max_side:
        side = int(cfg.max_side)
        filters.append(
            f"scale='if(gte(iw,ih),min({side},iw),-2)':'if(gte(iw,ih),-2,min({side},ih))'"
        )
    return filters


def _clip_output(
    i: int, cut: ClipCut, out: Path, cfg: MediaConfig, stream: int, fps: float
) -> list[str]:
    args = ["-map", f"{i}:{stream}"]
    if cfg.audio:
        args += ["-map", f"{i}:a:0?"]
    if cfg.copy:
        args += ["-t", f"{cut.duration_s:.6f}", "-c", "copy"]
    else:
        frames = cut.num_frames
        if cfg.fps:  # resampled: as many frames as the new rate puts in the span
            frames = max(1, round(cut.duration_s * cfg.fps))
        args += ["-frames:v", str(frames)]
        filters = _video_filters(cfg)
        if filters:
            args += ["-filter:v", ",".join(filters)]
        args += ["-c:v", cfg.codec, "-pix_fmt", cfg.pix_fmt]
        if cfg.codec == "libx264":
            args += ["-crf", str(cfg.crf), "-preset", cfg.preset]
        args += ["-c:a", "aac", "-b:a", "128k"]
        args += ["-t", f"{cut.duration_s + 1.0 / max(fps, 1.0):.6f}"]  # the audio's end
        if not cfg.fps:
            args += ["-fps_mode", "passthrough"]
    return [*args, "-movflags", "+faststart", "-y", str(out)]


def _preview_output(i: int, cut: ClipCut, out: Path, cfg: MediaConfig, stream: int) -> list[str]:
    side = int(cfg.preview_side)
    scale = f"scale='if(gte(iw,ih),{side},-2)':'if(gte(iw,ih),-2,{side})'"
    seconds = min(cfg.preview_s, cut.duration_s)
    return ["-map", f"{i}:{stream}", "-t", f"{seconds:.3f}", "-filter:v",
            f"fps={cfg.preview_fps},{scale}", "-c:v", "libwebp", "-loop", "0", "-q:v", "60",
            "-an", "-y", str(out)]  # fmt: skip


@lru_cache(maxsize=8)
def has_encoder(name: str) -> bool:
    """Whether this ffmpeg has an encoder (the bundled static one may lack libwebp)."""
    try:
        result = media.run([media.ffmpeg_path(), "-hide_banner", "-encoders"], timeout_s=30)
    except (media.MediaError, media.MediaTimeout):
        return False
    return any(line.split()[1:2] == [name] for line in result.stdout.decode().splitlines())


def cut_clip_files(
    source: Path,
    cuts: Sequence[ClipCut],
    out_dir: Path,
    cfg: MediaConfig,
    stream_index: int = 0,
    fps: float = 25.0,
) -> dict[str, str | None]:
    """Cut each span to `out_dir/{clip_id}.mp4` (and `.webp`); clip id -> None when it
    worked, or why it did not. One ffmpeg process per `clips_per_process` clips."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, str | None] = {}
    step = max(1, int(cfg.clips_per_process))
    quarter = 0.25 / max(fps, 1.0)
    for at in range(0, len(cuts), step):
        group = list(cuts[at : at + step])
        argv = [media.ffmpeg_path(), "-nostdin", "-v", "error"]
        for cut in group:
            argv += ["-ss", f"{max(0.0, cut.start_s - quarter):.6f}", "-i", str(source)]
        for i, cut in enumerate(group):
            argv += _clip_output(i, cut, out_dir / f"{cut.clip_id}.mp4", cfg, stream_index, fps)
            if cfg.previews and has_encoder("libwebp"):  # a static ffmpeg may lack it
                argv += _preview_output(i, cut, out_dir / f"{cut.clip_id}.webp", cfg, stream_index)
        try:
            result = media.run(argv, timeout_s=cfg.timeout_s)
            error = None if result.returncode == 0 else (result.stderr or "ffmpeg failed")[-300:]
        except (media.MediaError, media.MediaTimeout) as e:
            error = str(e)[:300]
        for cut in group:
            made = (out_dir / f"{cut.clip_id}.mp4").exists()
            results[cut.clip_id] = error if error or not made else None
            if results[cut.clip_id]:
                for suffix in (".mp4", ".webp"):
                    (out_dir / f"{cut.clip_id}{suffix}").unlink(missing_ok=True)
    return results


def thumbnail_jpeg(image: object, side: int) -> bytes:
    """A keyframe (RGB array) as a JPEG whose long side is at most `side`."""
    import io

    import numpy as np
    from PIL import Image

    img = Image.fromarray(np.asarray(image))
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()
