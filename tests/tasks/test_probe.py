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


# -- several video streams: every one is held to the bounds, the decode reads the first ----

TWO_STREAMS = ["-map", "0:v", "-map", "1:v"]


def _two_streams(tmp_path: Path, second: str, codec: list[str], name: str) -> Path:
    from tasks import media as m

    out = tmp_path / name
    argv = [m.ffmpeg_path(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
            "testsrc2=s=320x180:r=25", "-f", "lavfi", "-i", second, "-t", "4", *TWO_STREAMS,
            *codec, "-y", str(out)]  # fmt: skip
    assert m.run(argv, timeout_s=120).returncode == 0
    return out


@pytest.fixture(params=["ffprobe", "pyav"])
def prober(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each probe test twice: with ffprobe, and with the PyAV fallback a machine without
    system ffmpeg uses."""
    if request.param == "pyav":
        monkeypatch.setattr(media, "ffprobe_path", lambda: None)
    elif media.ffprobe_path() is None:
        pytest.skip("no ffprobe on this machine")
    return str(request.param)


def test_every_video_stream_is_held_to_the_bounds(tmp_path: Path, prober: str) -> None:
    codec = ["-c:v:0", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
             "-c:v:1", "mjpeg", "-q:v", "31"]  # fmt: skip
    path = _two_streams(tmp_path, "color=c=blue:s=8000x8000:r=1", codec, "huge-second.mkv")
    result = probe_video(path, ProbeConfig())
    assert isinstance(result, Rejection) and result.reason == RejectReason.OUT_OF_BOUNDS
    assert "video stream 2 of 2: size 8000x8000" in result.detail


def test_the_decode_reads_the_stream_the_probe_described(tmp_path: Path, prober: str) -> None:
    """ffmpeg on its own picks the largest picture: here the 10 fps 1280x720 stream."""
    from tasks.transitions import TransitionConfig, analyse_shots

    codec = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    path = _two_streams(tmp_path, "testsrc2=s=1280x720:r=10", codec, "two.mp4")
    info = probe_video(path, ProbeConfig())
    assert isinstance(info, ProbeInfo)
    assert (info.stream_index, info.width, info.fps) == (0, 320, pytest.approx(25.0))
    analysis = analyse_shots(path, info, TransitionConfig())
    assert not isinstance(analysis, Rejection)
    assert len(analysis.times) == 100  # 4 s at 25 fps: stream 0's frames, not stream 1's 40


def test_the_fallback_reads_the_display_matrix(samples: dict, tmp_path: Path, prober: str) -> None:
    from tests.helpers import set_display_rotation

    rotated = tmp_path / "rotated.mp4"
    rotated.write_bytes(set_display_rotation(samples["night_harbour"].path.read_bytes(), 90))
    info = probe_video(rotated, ProbeConfig())
    assert isinstance(info, ProbeInfo) and info.rotation in (90, 270)
    assert info.display_size == (180, 320)  # shown portrait, as a phone recorded it


def test_a_decode_that_runs_too_long_is_labelled_as_a_decode(samples: dict) -> None:
    from storage.types import ClipSpan
    from tasks.keyframes import KeyframeConfig, extract_keyframes
    from tasks.transitions import TransitionConfig, analyse_shots

    path = samples["night_harbour"].path
    info = probe_video(path, ProbeConfig())
    assert isinstance(info, ProbeInfo)
    slow = analyse_shots(path, info, TransitionConfig(timeout_s=0.01))
    assert isinstance(slow, Rejection)
    assert (slow.stage, slow.reason) == ("transitions", RejectReason.DECODE_TIMEOUT)
    kf = extract_keyframes(path, info, ClipSpan(0, 0.5, 4.0), KeyframeConfig(timeout_s=0.01))
    assert isinstance(kf, Rejection)
    assert (kf.stage, kf.reason) == ("keyframes", RejectReason.DECODE_TIMEOUT)
