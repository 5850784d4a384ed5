"""Bad inputs, each an S3 object run through the real flow: every one is quarantined with
its reason or processed correctly, nothing crashes the run, and keys round-trip exactly."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from storage.s3 import S3Options, ensure_bucket, make_client
from tests.helpers import flow_config, jpeg_declaring, make_media, set_display_rotation

pytestmark = pytest.mark.slow

X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
TWO_SHOTS = "testsrc2=s=320x180:r=25"


def encode(path: Path, lavfi: str, seconds: float, codec: list[str]) -> bytes:
    make_media(path, lavfi, seconds, codec)
    return path.read_bytes()


def mjpeg_declaring(tmp: Path, width: int, height: int) -> bytes:
    """A 2 s Motion-JPEG MP4 whose frames and sample entry declare width x height."""
    import struct

    from tasks import media

    jpg = tmp / "one.jpg"
    jpg.write_bytes(jpeg_declaring(1, 1))
    out = tmp / "one.mp4"
    argv = [media.ffmpeg_path(), "-v", "error", "-loop", "1", "-framerate", "25", "-t", "2",
            "-i", str(jpg), "-c:v", "copy", "-y", str(out)]  # fmt: skip
    assert media.run(argv, timeout_s=60).returncode == 0
    data = bytearray(out.read_bytes())
    sof = bytes.fromhex("ffc000110800010001")  # SOF0: 8 bits, 1 x 1
    data = data.replace(sof, sof[:5] + struct.pack(">HH", height, width))
    entry = data.find(b"mp4v")  # the sample entry: width, height at +28
    struct.pack_into(">HH", data, entry + 28, width, height)
    return bytes(data)


@pytest.fixture(scope="module")
def bad_inputs(
    tmp_path_factory: pytest.TempPathFactory, samples: dict
) -> dict[str, tuple[bytes, str]]:
    """key -> (bytes, expected outcome: a quarantine reason, or "landed")."""
    tmp = tmp_path_factory.mktemp("bad")
    good = samples["night_harbour"].path.read_bytes()
    other = samples["sunset_meadow"].path.read_bytes()  # (<= 3 clips may share a caption)
    audio = encode(tmp / "a.m4a", "sine=frequency=440", 2, ["-c:a", "aac"])
    one_frame = encode(tmp / "one.mp4", TWO_SHOTS, 0.04, X264)
    tiny = encode(tmp / "tiny.mp4", "color=c=red:s=2x2:r=25", 4, X264)
    webm = encode(tmp / "v.webm", TWO_SHOTS, 4, ["-c:v", "libvpx-vp9", "-deadline", "realtime"])
    hevc = encode(tmp / "v.mkv", TWO_SHOTS, 4, ["-c:v", "libx265", "-preset", "ultrafast"])
    hls = b"#EXTM3U\n#EXTINF:10,\nfile:/etc/passwd\n#EXT-X-ENDLIST\n"
    rotated = set_display_rotation(good, 90)  # a phone held upright
    one_px = mjpeg_declaring(tmp, 1, 1)
    huge = mjpeg_declaring(tmp, 16384, 16384)
    return {
        "bad/zero.mp4": (b"", "empty_object"),
        "bad/random.mp4": (random.Random(1).randbytes(8192), "not_video"),
        "bad/truncated.mp4": (good[: len(good) // 3], "probe_failed"),
        "bad/audio-only.mp4": (audio, "no_video_stream"),
        "bad/one-frame.mp4": (one_frame, "out_of_bounds"),  # 0.04 s: under probe.min_duration_s
        # Under quality.min_width: refused from the probe, before any decode.
        "bad/2x2.mp4": (tiny, "out_of_bounds"),
        "bad/1x1.mp4": (one_px, "out_of_bounds"),
        # ffmpeg refuses pictures over 2^28 pixels, so the probe sees no size at all.
        "bad/16384x16384.mp4": (huge, "out_of_bounds"),
        "bad/playlist.mp4": (hls, "not_video"),
        "ok/vp9.webm": (webm, "landed"),
        "ok/hevc.mkv": (hevc, "landed"),
        "ok/ünïcödé clip $(rm -rf ~); a;b.mp4": (good, "landed"),
        "ok/-leading dash.mp4": (good, "landed"),
        "ok/concat:file.mp4": (good, "landed"),
        "ok/..dots..mp4": (other, "landed"),  # SeaweedFS refuses `..` as a whole segment
        "ok/rotated-90.mp4": (rotated, "landed"),
    }


def test_every_bad_input_is_quarantined_with_its_reason_or_processed(
    prefect_api: None, local_s3: Any, bad_inputs: dict, tmp_path: Path
) -> None:
    client = make_client(S3Options(endpoint_url=local_s3.endpoint_url))
    bucket = "bad-inputs"
    ensure_bucket(client, bucket)
    for key, (body, _) in bad_inputs.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    client.put_object(Bucket=bucket, Key="bad/folder/", Body=b"")  # a console "folder"
    config = flow_config(
        local_s3.endpoint_url, bucket, tmp_path, quality={"max_failed_fraction": 1.0}
    )
    report = run_curate(config)  # nothing raises
    store = LanceStore(config.lance_uri)
    landed = {r["key"] for r in store.rows(schema.CLIPS)}
    reasons: dict[str, set[str]] = {}
    for r in store.rows(schema.QUARANTINE):
        reasons.setdefault(r["key"], set()).add(r["reason"])
    outcome = {
        key: "landed" if key in landed else ",".join(sorted(reasons.get(key, {"lost"})))
        for key in bad_inputs
    }
    assert outcome == {key: expected for key, (_, expected) in bad_inputs.items()}
    assert report["seen"] == len(bad_inputs)  # the folder marker is not a video
    assert report["failed"] == 0
    assert report["seen"] == report["landed"] + report["quarantined"] + report["skipped"]
    # Keys are data: they reach the rows byte for byte, and never the local disk.
    assert landed | set(reasons) == set(bad_inputs)
    assert not any((tmp_path / "work" / "tmp").iterdir())  # downloads cleaned up
    written = [str(p) for p in tmp_path.rglob("*")]
    assert not [p for p in written if "rm -rf" in p or "concat:" in p or "ünïcödé" in p]
    # The rotated video is stored as shown (portrait), its keyframes upright.
    rotated = [r for r in store.rows(schema.CLIPS) if r["key"] == "ok/rotated-90.mp4"]
    assert rotated and all(r["width"] < r["height"] for r in rotated)
