"""Helpers shared by tests."""

from __future__ import annotations

from pathlib import Path


def make_media(path: Path, lavfi: str, seconds: float, extra: list[str] | None = None) -> Path:
    """Encode a lavfi source to `path` with the same ffmpeg the pipeline uses."""
    from tasks import media

    argv = [media.ffmpeg_path(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", lavfi]
    argv += [
        "-t",
        str(seconds),
        *(extra or ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    ]
    argv += ["-y", str(path)]
    result = media.run(argv, timeout_s=60)
    assert result.returncode == 0, result.stderr
    return path


def flow_config(endpoint_url: str, bucket: str, tmp: Path, prefix: str = "", **extra: object):
    """A run config for the flow tests: this bucket on the test S3, Lance and work in tmp;
    `extra` sections are merged on top (e.g. quality={"max_failed_fraction": 1.0})."""
    from flows.config import build_config

    overrides = {
        "source": {"bucket": bucket, "prefix": prefix},
        "s3": {"endpoint_url": endpoint_url},
        "lance_uri": str(tmp / "lance"),
        "workdir": str(tmp / "work"),
    }
    for section, value in extra.items():
        if isinstance(value, dict) and isinstance(overrides.get(section), dict):
            overrides[section] = {**overrides[section], **value}  # type: ignore[dict-item]
        else:
            overrides[section] = value
    return build_config(overrides=overrides, environ={})


def curate_demo_videos(samples: dict, tmp: Path):
    """The demo's three videos copied to a folder and curated with clip files: the table
    the page and export tests read. Returns the run's config."""
    import shutil

    from flows.curate import run_curate

    videos = tmp / "videos"
    videos.mkdir()
    for name in ("night_harbour", "sunset_meadow", "fractal_bars"):
        shutil.copy(samples[name].path, videos / f"{name}.mp4")
    config = flow_config("", str(videos), tmp, media={"uri": str(tmp / "media")})
    run_curate(config)
    return config


def set_display_rotation(mp4: bytes, degrees: int) -> bytes:
    """The MP4 with its tracks' display matrix (tkhd) set to a rotation of 90, 180 or 270
    degrees: what a phone writes when it is held upright. The coded frames are unchanged."""
    import struct

    one, w = 0x10000, 0x40000000
    matrices = {
        90: (0, one, 0, -one, 0, 0, 0, 0, w),
        180: (-one, 0, 0, 0, -one, 0, 0, 0, w),
        270: (0, -one, 0, one, 0, 0, 0, 0, w),
    }
    data = bytearray(mp4)
    start = 0
    while (i := data.find(b"tkhd", start)) != -1:
        version = data[i + 4]
        offset = i + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
        struct.pack_into(">9i", data, offset, *matrices[degrees])
        start = i + 4
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) declares width x height: a file that claims
    a size its data does not hold."""
    import io
    import struct

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 200)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def render_video(path: Path, frame, count: int, size: tuple[int, int] = (640, 360), fps: int = 25):
    """Encode `count` frames drawn by `frame(i) -> PIL image` (H.264 through the pipeline's
    ffmpeg): text, logos and motion drawn exactly where a test wants them."""
    import subprocess

    from tasks import media

    w, h = size
    argv = [media.ffmpeg_path(), "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0", "-c:v", "libx264", "-preset",
            "ultrafast", "-pix_fmt", "yuv420p", "-y", str(path)]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    for i in range(count):
        proc.stdin.write(frame(i).convert("RGB").resize((w, h)).tobytes())
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode() if proc.stderr else ""
    return path


def scene(i: int, size: tuple[int, int] = (640, 360), seed: int = 0):
    """A busy, moving picture without text: coloured discs drifting over a gradient."""
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = size
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    channels = [x * 120 + 40, y * 80 + 60, (x + y) * 60 + 50]
    order = np.random.default_rng(seed + 1000).permutation(3) if seed else range(3)
    base = np.stack([channels[c] for c in order], axis=2)
    base = (base if seed % 2 == 0 else 255 - base).astype("uint8")  # a new seed, a new look
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    rng = np.random.default_rng(seed)
    for k in range(9):
        cx = (rng.uniform(0, w) + i * (2 + k)) % w
        cy = rng.uniform(0.15 * h, 0.75 * h)
        r = rng.uniform(0.05, 0.12) * h
        draw.ellipse(
            [cx - r, cy - r, cx + r, cy + r], fill=tuple(int(v) for v in rng.integers(60, 250, 3))
        )
    return img


def count_frames(path: Path) -> int:
    """Frames in a video, by the pipeline's own decoder (no ffprobe needed)."""
    from tasks import media

    return sum(1 for _ in media.stream_frames(Path(path), 32, 18, timeout_s=120))


def count_frames_of(data: bytes, tmp: Path) -> int:
    path = Path(tmp) / "count-frames.mp4"
    path.write_bytes(data)
    return count_frames(path)


def stream_types(path: Path) -> list[str]:
    """The container's stream types, in order, through PyAV (no ffprobe needed)."""
    import av

    with av.open(str(path)) as container:
        return [s.type for s in container.streams]
