"""Probe a downloaded video: what it is, and whether we are willing to decode it.

The verdict comes from the container and stream metadata, never from the file name:
a `.mp4` of random bytes is `not_video`, an audio-only file is `no_video_stream`, a file
with absurd dimensions or duration is `out_of_bounds` before anything decodes it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from storage.types import ProbeInfo, Rejection, RejectReason
from tasks import media

STAGE = "probe"


@dataclass(frozen=True)
class ProbeConfig:
    timeout_s: float = 30.0
    max_width: int = 7680
    max_height: int = 7680
    max_duration_s: float = 4 * 3600.0
    min_duration_s: float = 0.1


# Run by `python -c` where ffprobe is missing: PyAV in its own process, so a decoder crash
# or hang on a hostile file takes down only this helper, and the timeout still applies.
_PYAV_PROBE = r"""
import json, sys
import av
path, formats, max_side = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = av.open(path, options={"protocol_whitelist": "file", "format_whitelist": formats})
streams = []
for s in c.streams:
    d = {"index": s.index, "codec_type": s.type,
         "codec_name": s.codec_context.name if s.codec_context else "",
         "disposition": {"attached_pic": int(bool(s.disposition & 1024))}}
    if s.type == "video":
        cc = s.codec_context
        d.update(width=cc.width, height=cc.height,
                 avg_frame_rate=str(s.average_rate or "0/0"),
                 r_frame_rate=str(s.base_rate or "0/0"),
                 duration=str(float(s.duration * s.time_base)) if s.duration else None)
        # The display matrix reaches PyAV on decoded frames only: decode one, and only
        # from a stream whose declared size is within bounds.
        if 0 < cc.width <= max_side and 0 < cc.height <= max_side:
            try:
                frame = next(c.decode(s))
                if frame.rotation:
                    d["side_data_list"] = [{"rotation": int(frame.rotation)}]
            except (StopIteration, av.error.FFmpegError):
                pass
            c.seek(0)
    streams.append(d)
dur = c.duration / 1e6 if c.duration else None
print(json.dumps({"format": {"format_name": c.format.name, "duration": dur}, "streams": streams}))
"""


def _ffprobe_json(path: Path, cfg: ProbeConfig) -> dict[str, Any] | str:
    """The probe as ffprobe-shaped JSON, or the tool's error text."""
    ffprobe = media.ffprobe_path()
    target = str(Path(path).resolve())
    if ffprobe:
        argv = [
            ffprobe,
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            media.FORMAT_WHITELIST,
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            f"file:{target}",
        ]
    else:
        max_side = str(max(cfg.max_width, cfg.max_height))
        argv = [sys.executable, "-c", _PYAV_PROBE, target, media.FORMAT_WHITELIST, max_side]
    result = media.run(argv, timeout_s=cfg.timeout_s)
    if result.returncode != 0:
        message = result.stderr.replace(f"file:{target}", "input").replace(target, "input")
        return message.strip()[-500:] or f"exit code {result.returncode}"
    try:
        return dict(json.loads(result.stdout))
    except json.JSONDecodeError:
        return "probe printed no JSON"


def has_container_signature(path: Path) -> bool:
    """Whether the bytes start like a video container (MP4/MOV, Matroska/WebM, AVI, FLV,
    MPEG-TS/PS), whatever the file is called."""
    with open(path, "rb") as f:
        head = f.read(189)
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")
        or head.startswith((b"\x1a\x45\xdf\xa3", b"FLV", b"\x00\x00\x01\xba"))
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
        or (head[:1] == b"\x47" and head[188:189] == b"\x47")  # MPEG-TS sync bytes
    )


def failure_reason(path: Path) -> RejectReason:
    """A damaged video (`probe_failed`) or bytes that are no video at all (`not_video`),
    decided by content: ffprobe's own guess leans on the file name."""
    return RejectReason.PROBE_FAILED if has_container_signature(path) else RejectReason.NOT_VIDEO


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0/1")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value) if value > 0 else 0.0


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(side["rotation"]) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return int(tag) % 360 if tag and str(tag).lstrip("-").isdigit() else 0


def interpret_probe(data: dict[str, Any], cfg: ProbeConfig) -> ProbeInfo | Rejection:
    """Turn probe JSON into ProbeInfo, or say why the file will not be decoded.

    Every video stream is held to the bounds, not only the one we read: a small first
    stream does not vouch for a huge second one. The stream described is the first real
    video stream (cover art is not one), and the decode reads that stream by its index."""
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    video = [s for s in streams if s.get("codec_type") == "video"]
    # Cover art in audio files shows up as a one-frame "video" stream with this disposition.
    video = [s for s in video if not (s.get("disposition") or {}).get("attached_pic")]
    if not video:
        reason = RejectReason.NO_VIDEO_STREAM if streams else RejectReason.NOT_VIDEO
        return Rejection(STAGE, reason, f"format {fmt.get('format_name', '?')}, no video stream")
    v = video[0]
    width, height = int(v.get("width") or 0), int(v.get("height") or 0)
    fps = _rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate"))
    duration = float(fmt.get("duration") or v.get("duration") or 0.0)
    info = ProbeInfo(
        format_name=str(fmt.get("format_name", "")),
        duration_s=duration,
        width=width,
        height=height,
        fps=fps,
        codec=str(v.get("codec_name", "")),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        rotation=_rotation(v),
        stream_index=int(v.get("index", streams.index(v))),
    )
    problems = []
    for n, s in enumerate(video):
        w, h = int(s.get("width") or 0), int(s.get("height") or 0)
        if not (0 < w <= cfg.max_width and 0 < h <= cfg.max_height):
            which = "" if len(video) == 1 else f"video stream {n + 1} of {len(video)}: "
            problems.append(
                f"{which}size {w}x{h} outside 1..{cfg.max_width}x{cfg.max_height} "
                "(probe.max_width, probe.max_height)"
            )
    if not (cfg.min_duration_s <= duration <= cfg.max_duration_s):
        problems.append(
            f"duration {duration:.2f} s outside {cfg.min_duration_s}..{cfg.max_duration_s} s"
        )
    if problems:
        return Rejection(STAGE, RejectReason.OUT_OF_BOUNDS, "; ".join(problems))
    return info


def probe_video(path: Path, cfg: ProbeConfig) -> ProbeInfo | Rejection:
    """Probe `path` under a hard timeout; bad media is a Rejection, never an exception."""
    if Path(path).stat().st_size == 0:
        return Rejection(STAGE, RejectReason.EMPTY_OBJECT, "zero bytes")
    try:
        data = _ffprobe_json(path, cfg)
    except media.MediaTimeout as e:
        return Rejection(STAGE, RejectReason.PROBE_TIMEOUT, str(e))
    if isinstance(data, str):
        return Rejection(STAGE, failure_reason(path), data)
    return interpret_probe(data, cfg)
