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
