from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage.types import ProbeInfo, Rejection, RejectReason
from tasks import media
from tasks.probe import ProbeConfig, probe_video
from tests.helpers import make_media


def test_probe_reads_a_real_video(samples: dict) -> None:
    info = probe_video(samples["night_harbour"].path, ProbeConfig())
    assert isinstance(info, ProbeInfo)
    assert (info.width, info.height, info.codec) == (320, 180, "h264")
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(10.0, abs=0.1)
    assert not info.has_audio


def test_pyav_fallback_agrees_with_ffprobe(samples: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    if media.ffprobe_path() is None:
        pytest.skip("no ffprobe on this machine: the fallback is the only path")
    with_ffprobe = probe_video(samples["sunset_meadow"].path, ProbeConfig())
    monkeypatch.setattr(media, "ffprobe_path", lambda: None)
    with_pyav = probe_video(samples["sunset_meadow"].path, ProbeConfig())
    assert isinstance(with_pyav, ProbeInfo)
    assert (with_pyav.width, with_pyav.height) == (with_ffprobe.width, with_ffprobe.height)
    assert with_pyav.fps == pytest.approx(with_ffprobe.fps)
    assert with_pyav.duration_s == pytest.approx(with_ffprobe.duration_s, abs=0.1)


def test_zero_bytes_is_empty_object(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    result = probe_video(p, ProbeConfig())
    assert isinstance(result, Rejection) and result.reason == RejectReason.EMPTY_OBJECT


def test_random_bytes_named_mp4_is_not_video(samples: dict) -> None:
    result = probe_video(samples["not_a_video"].path, ProbeConfig())
    assert isinstance(result, Rejection) and result.reason == RejectReason.NOT_VIDEO
    assert str(samples["not_a_video"].path) not in result.detail  # no local paths in rows


def test_audio_only_has_no_video_stream(tmp_path: Path) -> None:
    p = make_media(tmp_path / "tone.m4a", "sine=frequency=440", 1, ["-c:a", "aac"])
    result = probe_video(p, ProbeConfig())
    assert isinstance(result, Rejection) and result.reason == RejectReason.NO_VIDEO_STREAM


def test_truncated_mp4_is_rejected_not_raised(samples: dict, tmp_path: Path) -> None:
    data = samples["night_harbour"].path.read_bytes()
    p = tmp_path / "truncated.mp4"
    p.write_bytes(data[: len(data) // 3])  # moov atom is at the end: cut off
    result = probe_video(p, ProbeConfig())
    assert isinstance(result, Rejection)
    assert result.reason in (RejectReason.NOT_VIDEO, RejectReason.PROBE_FAILED)


def test_limits_give_out_of_bounds(samples: dict) -> None:
    result = probe_video(samples["night_harbour"].path, ProbeConfig(max_duration_s=5))
    assert isinstance(result, Rejection) and result.reason == RejectReason.OUT_OF_BOUNDS
    assert "duration" in result.detail


def test_probe_timeout_is_a_rejection(
    samples: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = tmp_path / "slow-ffprobe"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(media, "ffprobe_path", lambda: str(slow))
    result = probe_video(samples["night_harbour"].path, ProbeConfig(timeout_s=0.5))
    assert isinstance(result, Rejection) and result.reason == RejectReason.PROBE_TIMEOUT


def test_ffmpeg_falls_back_to_imageio_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fallback when PATH has no ffmpeg: the static binary bundled in imageio-ffmpeg.
    media.ffmpeg_path.cache_clear()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    try:
        assert "imageio_ffmpeg" in media.ffmpeg_path() and Path(media.ffmpeg_path()).is_file()
    finally:
        media.ffmpeg_path.cache_clear()


@pytest.mark.parametrize(
    "playlist",
    [
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:/etc/passwd\n#EXT-X-ENDLIST\n",
        "#EXTM3U\n#EXTINF:10,\nhttp://169.254.169.254/latest/meta-data\n#EXT-X-ENDLIST\n",
        "ffconcat version 1.0\nfile /etc/passwd\n",
    ],
    ids=["hls-file", "hls-http", "concat"],
)
def test_playlists_pointing_elsewhere_are_refused(
    playlist: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.types import ProbeInfo as Info
    from tasks.transitions import TransitionConfig, analyse_shots

    p = tmp_path / "input"
    p.write_text(playlist)
    for ffprobe in (media.ffprobe_path(), None):  # ffprobe, then the PyAV fallback
        monkeypatch.setattr(media, "ffprobe_path", lambda f=ffprobe: f)
        result = probe_video(p, ProbeConfig())
        assert isinstance(result, Rejection) and result.reason == RejectReason.NOT_VIDEO
    # Decoding refuses it too, whatever a probe said.
    decoded = analyse_shots(p, Info("hls", 10, 320, 180, 25, "h264", False), TransitionConfig())
    assert isinstance(decoded, Rejection) and decoded.reason == RejectReason.DECODE_FAILED
