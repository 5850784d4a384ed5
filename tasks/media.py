"""The one hardened ffmpeg/ffprobe runner: every media subprocess goes through here.

Untrusted bytes are only ever named by a path we chose; the path is passed as
`file:<path>` in an argv list (no shell), so nothing in it can be read as an option or a
protocol, and `-protocol_whitelist file` stops a crafted container from reaching out to
other files' protocols (http, concat, ...). Every call has a hard wall-clock timeout that
kills the whole process group: Prefect's task timeout cannot interrupt a blocking call.

ffmpeg comes from PATH when present, else from the static build in `imageio-ffmpeg`.
ffprobe comes from PATH when present; without it, probing runs PyAV in a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np


class MediaTimeout(Exception):
    """The subprocess ran past its wall-clock limit and was killed."""


class MediaError(Exception):
    """ffmpeg/ffprobe failed; `detail` is the tail of its stderr."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class MediaStopped(Exception):
    """The run is stopping and killed this process: no verdict on the media itself, so
    it must never become a Rejection (or a cached result)."""


# Every media subprocess runs in a session of its own (so a hung one can be killed as a
# group), which also keeps a terminal's Ctrl-C from reaching it: a run being stopped
# kills the live ones here, and starts no more until the next run begins.
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
_REFUSING = threading.Event()


def stop_all() -> int:
    """Kill every live media subprocess and refuse new ones; returns how many died."""
    _REFUSING.set()
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        _kill_group(proc)
    return len(live)


def allow_new() -> None:
    _REFUSING.clear()


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    if _REFUSING.is_set():
        raise MediaStopped("the run is stopping: no new media process is started")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(proc)


@lru_cache(maxsize=1)
def ffmpeg_path() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # the static fallback, a declared dependency

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@lru_cache(maxsize=1)
def ffprobe_path() -> str | None:
    return shutil.which("ffprobe")


# Container demuxers we read. Playlist and indirection demuxers (hls, concat, image2
# sequences, ...) are left out: a crafted file must not make ffmpeg open other files.
FORMAT_WHITELIST = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,mpegvideo,flv,h264,hevc,m4v,"
    "ivf,asf,ogg,gif,mp3,wav,aac"
)


HWACCELS = ("cuda", "vaapi", "qsv", "videotoolbox", "vulkan", "d3d11va", "auto")


def input_args(
    path: Path,
    start_s: float | None = None,
    fast: bool = False,
    hwaccel: str | None = None,
    threads: int = 0,
) -> list[str]:
    """The hardened input half of an ffmpeg command line. `fast` skips the decoder's
    in-loop deblocking on B-frames (`bidir`): ~7% less decode work on x264 output,
    invisible at thumbnail size (0.002 mean change at most). Not on every frame (`all`,
    ~13%): a P-frame decoded without it differs from the encoder's, the error builds up
    along the group of pictures and the picture jumps back at the next keyframe, a cut
    that is not there (seen: 0.13 mean change in one frame of a fractal zoom); B-frames
    pass their error on to a few neighbours at most.
    `hwaccel` decodes on a GPU (`cuda` with an NVIDIA card); frames come back to system
    memory for the filters, and ffmpeg falls back to software when it cannot.
    `threads` caps the decoder's threads (0: ffmpeg's choice, one per core and one more)."""
    args = ["-nostdin", "-hide_banner", "-protocol_whitelist", "file"]
    args += ["-format_whitelist", FORMAT_WHITELIST]
    if hwaccel:
        if hwaccel not in HWACCELS:
            raise ValueError(f"hwaccel {hwaccel!r}: expected one of {', '.join(HWACCELS)}")
        args += ["-hwaccel", hwaccel]
    if fast:
        args += ["-skip_loop_filter", "bidir"]
    if threads > 0:
        args += ["-threads", str(int(threads))]
    if start_s is not None and start_s > 0:
        args += ["-ss", f"{start_s:.3f}"]
    return [*args, "-i", f"file:{Path(path).resolve()}"]


def _time_base(line: bytes) -> float | None:
    """Seconds per tick from showinfo's `config in time_base: 1/15360` line."""
    at = line.find(b"time_base:")
    num, _, den = line[at + 10 :].split(b",")[0].strip().partition(b"/")
    try:
        return int(num) / int(den) if int(num) > 0 and int(den) > 0 else None
    except ValueError:
        return None


def _frame_time(line: bytes, base: float | None) -> float | None:
    """A showinfo frame line's presentation time: its integer pts times the time base,
    exact where `pts_time` (six significant digits) is not: 1 ms past 100 s of video,
    whole seconds past 100,000. None for a line that is not a frame's."""
    at = line.find(b" pts:")
    if base is not None and at >= 0:
        field = line[at + 5 :].split(maxsplit=1)
        with contextlib.suppress(ValueError, IndexError):
            return int(field[0]) * base
    at = line.find(b"pts_time:")
    if at < 0:
        return None
    end = line.find(b" ", at + 9)
    try:
        return float(line[at + 9 : end if end > 0 else None])
    except ValueError:
        return None


def keyframe_times(
    path: Path, start_s: float, end_s: float, stream_index: int, timeout_s: float
) -> list[float]:
    """Presentation times of the keyframes between start_s and end_s, from the packets'
    flags (a demux of that stretch only, no decode); empty without ffprobe or on error."""
    ffprobe = ffprobe_path()
    if ffprobe is None:
        return []
    argv = [ffprobe, "-v", "error", "-protocol_whitelist", "file"]
    argv += ["-format_whitelist", FORMAT_WHITELIST, "-select_streams", str(int(stream_index))]
    argv += ["-read_intervals", f"{max(0.0, start_s):.3f}%{end_s:.3f}"]
    argv += ["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"]
    result = run([*argv, f"file:{Path(path).resolve()}"], timeout_s)
    if result.returncode != 0:
        return []
    times = []
    for line in result.stdout.decode("ascii", "replace").splitlines():
        pts, _, flags = line.partition(",")
        if flags.startswith("K"):
            with contextlib.suppress(ValueError):
                times.append(float(pts))
    return sorted(t for t in times if start_s <= t <= end_s)


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: bytes
    stderr: str


def run(argv: list[str], timeout_s: float, max_stdout: int = 16 << 20) -> RunResult:
    """Run argv with a hard timeout (the process group is killed); capture bounded output."""
    proc = _spawn(argv)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise MediaTimeout(f"{Path(argv[0]).name} ran past {timeout_s:.0f} s") from None
    finally:
        _forget(proc)
    if proc.returncode != 0 and _REFUSING.is_set():
        raise MediaStopped(f"{Path(argv[0]).name} was stopped with the run")
    return RunResult(proc.returncode, out[:max_stdout], err[-8192:].decode("utf-8", "replace"))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Frame:
    t: float  # presentation time in seconds, from the decoder's PTS
    rgb: np.ndarray  # H x W x 3 uint8


def stream_frames(
    path: Path,
    width: int,
    height: int,
    timeout_s: float,
    start_s: float | None = None,
    duration_s: float | None = None,
    select: str | None = None,
    fast: bool = False,
    hwaccel: str | None = None,
    stream_index: int | None = None,
    row_step: int = 1,
    threads: int = 0,
) -> Iterator[Frame]:
    """Decode frames scaled to width x height, one at a time, with their true PTS.

    Memory stays flat whatever the video's length: frames are read from a pipe as they
    come. Times come from ffmpeg's `showinfo` (per-frame PTS), so variable frame rate
    is right. `select` is an ffmpeg select expression to decode-and-keep only some frames.
    `row_step` (a power of two) keeps every row_step-th row of each decoded frame before
    the scale, by `field`'s stride arithmetic (no copy): the area scale's cost follows
    the rows it reads, and every fourth row of a 1080p frame saves about a tenth of the
    decode's CPU time at 48x27.
    """
    if row_step < 1 or row_step & (row_step - 1):
        raise ValueError(f"row_step {row_step}: expected a power of two")
    filters = []
    if select:
        filters.append(f"select='{select}'")
    filters += ["field=top"] * (row_step.bit_length() - 1)
    filters += [f"scale={width}:{height}:flags=area", "showinfo"]
    argv = [
        ffmpeg_path(),
        "-v",
        "info",
        "-nostats",
        *input_args(path, start_s, fast, hwaccel, threads),
    ]
    if duration_s is not None:
        argv += ["-t", f"{duration_s:.3f}"]
    if stream_index is not None:
        argv += ["-map", f"0:{int(stream_index)}"]
    argv += ["-an", "-sn", "-vf", ",".join(filters), "-fps_mode", "passthrough"]
    argv += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = _spawn(argv)
    # showinfo prints each frame's line before the frame reaches the pipe, so its time is
    # nearly always waiting when the frame is read: a deque, and a wait only when it is not.
    times: deque[float] = deque()
    arrived = threading.Condition()
    tail: deque[str] = deque(maxlen=20)

    def read_stderr() -> None:
        assert proc.stderr is not None
        base: float | None = None  # seconds per pts tick, from showinfo's config line
        for raw in proc.stderr:
            if b"showinfo" not in raw[:40]:
                tail.append(raw.decode("utf-8", "replace").rstrip())
                continue
            if b"config in time_base:" in raw:
                base = _time_base(raw)
                continue
            t = _frame_time(raw, base)
            if t is None:
                tail.append(raw.decode("utf-8", "replace").rstrip())
                continue
            times.append(t)
            if len(times) == 1:
                with arrived:
                    arrived.notify()
        with arrived:
            arrived.notify()

    def next_time() -> float:
        if not times:
            with arrived:
                arrived.wait_for(lambda: times or not reader.is_alive(), max(timeout_s, 1.0))
        if not times:
            if _REFUSING.is_set():
                raise MediaStopped("ffmpeg was stopped with the run")
            raise MediaError("ffmpeg sent a frame without its timestamp", "\n".join(tail))
        return times.popleft()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        _kill_group(proc)

    timer = threading.Timer(timeout_s, on_timeout)
    timer.start()
    frame_bytes = width * height * 3
    offset = round(start_s, 3) if start_s and start_s > 0 else 0.0  # as -ss reads it
    try:
        assert proc.stdout is not None
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            t = next_time()
            rgb = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
            yield Frame(t=offset + t, rgb=rgb)
        proc.wait()
        reader.join(timeout=5)
    finally:
        timer.cancel()
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        _forget(proc)
    if proc.returncode != 0 and _REFUSING.is_set():
        raise MediaStopped("ffmpeg was stopped with the run")
    if timed_out.is_set():
        raise MediaTimeout(f"ffmpeg decode ran past {timeout_s:.0f} s")
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg exited with {proc.returncode}", "\n".join(tail))
