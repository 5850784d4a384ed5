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
