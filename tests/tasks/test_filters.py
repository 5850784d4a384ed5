"""The motion (static) and text-overlay stages on real encoded video: each records its
scores, and refuses with its reason where it should (and only there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from flows.config import build_config
from storage.records import ClipRecord, VideoRecord
from storage.types import ObjectRef, Rejection, RejectReason
from tests.helpers import make_media, render_video, scene

CONFIG = build_config(environ={})


def clips_of(path: Path, **stage_overrides: object) -> list[ClipRecord]:
    """The video through probe, the decode pass, cutting and the stage list (measure
    mode: every stage scores every clip)."""
    from datetime import UTC, datetime

    from tasks.clips import cut_clips
    from tasks.probe import probe_video
    from tasks.stages import run_stages
    from tasks.transitions import analyse_shots

    config = build_config(overrides=dict(stage_overrides), environ={})
    probe = probe_video(path, config.probe)
    analysis = analyse_shots(path, probe, config.transitions)
    obj = ObjectRef("b", path.name, "e", 1, datetime(2026, 1, 1, tzinfo=UTC))
    video = VideoRecord(obj, path=path, probe=probe, transitions=analysis.transitions)
    for span in cut_clips(analysis, config.clips):
        run_stages(video.add_clip(span), config.clip_stages(), measure=True)
    return video.clips


# -- motion -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def motion_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("motion")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    big = tmp / "big.png"
    make_media(big, "mandelbrot=s=1280x720:r=1", 1, ["-frames:v", "1"])
    still = tmp / "still.png"
    make_media(still, "testsrc2=s=320x180", 1, ["-frames:v", "1"])

    def from_image(name: str, image: Path, vf: str) -> Path:
        from tasks import media

        out = tmp / name
        argv = [media.ffmpeg_path(), "-nostdin", "-v", "error", "-loop", "1", "-framerate",
                "25", "-i", str(image), "-t", "6", "-vf", vf, *x264, "-y", str(out)]  # fmt: skip
        assert media.run(argv, timeout_s=120).returncode == 0
        return out

    return {
        "still": from_image("still.mp4", still, "null"),
        "grainy still": from_image("grain.mp4", still, "noise=alls=10:allf=t"),
        "slow pan (3 px/s)": from_image("pan3.mp4", big, "crop=320:180:x='200+t*3':y=200"),
        "pan (40 px/s)": from_image("pan40.mp4", big, "crop=320:180:x='200+t*40':y=200"),
        "slow zoom": from_image(
            "zoom.mp4", big, "scale=4000:-1,zoompan=z='1+0.002*on':d=1:s=320x180:fps=25"
        ),
    }


@pytest.mark.parametrize(
    ("name", "static"),
    [("still", True), ("grainy still", True), ("slow pan (3 px/s)", False),
     ("pan (40 px/s)", False), ("slow zoom", False)],
)  # fmt: skip
def test_a_still_is_static_and_a_slow_pan_is_not(
    motion_videos: dict[str, Path], name: str, static: bool
) -> None:
    [clip] = clips_of(motion_videos[name])
    assert clip.scores["static"] is static, clip.scores
    if static:
        assert clip.rejection is not None and clip.rejection.reason == RejectReason.STATIC
        assert "motion.max_static_excursion" in clip.rejection.detail
    else:
        assert clip.rejection is None or clip.rejection.reason != RejectReason.STATIC


def test_static_clips_can_be_kept(motion_videos: dict[str, Path]) -> None:
    [clip] = clips_of(motion_videos["still"], motion={"filter_static": False})
    assert clip.scores["static"] is True
    assert clip.rejection is None or clip.rejection.reason != RejectReason.STATIC


def test_a_slide_show_is_a_run_of_static_clips(tmp_path: Path) -> None:
    def slide(i: int) -> Image.Image:
        return scene(0, seed=i // 100)  # a new still every 4 s

    path = render_video(tmp_path / "slides.mp4", slide, 300, size=(320, 180))
    clips = clips_of(path)
    assert len(clips) == 3 and all(c.scores["static"] for c in clips)


# -- text overlays ----------------------------------------------------------------------


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


LINES = ["Where are we going tonight", "I told you the harbour", "Then we should leave now"]


def subtitled(i: int) -> Image.Image:
    img = scene(i)
    draw = ImageDraw.Draw(img)
    text = LINES[(i // 40) % len(LINES)]  # a new line every 1.6 s, always at the bottom
    draw.text((90, 300), text, font=_font(30), fill="white", stroke_width=2, stroke_fill="black")
    return img


def logo(i: int) -> Image.Image:
    img = scene(i)
    ImageDraw.Draw(img).text((560, 14), "TV9", font=_font(26), fill="yellow")
    return img


def credits(i: int) -> Image.Image:
    img = Image.new("RGB", (640, 360), "black")
    draw = ImageDraw.Draw(img)
    names = ["Director  Ana Silva", "Camera  Jo Park", "Sound  Lee Wong", "Editor  Sam Roy",
             "Music  Kim Ito", "Producer  Max Ott"]  # fmt: skip
    for k, name in enumerate(names):
        draw.text((150, 380 + 55 * k - 3 * i), name, font=_font(28), fill="white")
    return img


def one_frame(i: int) -> Image.Image:
    img = scene(i)
    if i == 37:  # shown for one frame (40 ms) only
        ImageDraw.Draw(img).text((100, 150), "FLASH TEXT", font=_font(48), fill="red")
    return img


@pytest.fixture(scope="module")
def text_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("text")
    draw = {"plain": scene, "subtitles": subtitled, "corner logo": logo, "credits": credits,
            "one frame of text": one_frame}  # fmt: skip
    return {
        name: render_video(tmp / f"{i}.mp4", fn, 150) for i, (name, fn) in enumerate(draw.items())
    }


def test_overlays_score_and_a_plain_scene_does_not(text_videos: dict[str, Path]) -> None:
    scores = {name: clips_of(path)[0].scores for name, path in text_videos.items()}
    for name, s in scores.items():
        print(f"{name:18s} area {s['text_area']:.4f} overlay {s['text_artificial_area']:.4f} "
              f"boxes {s['text_boxes']:.1f}")  # fmt: skip
    assert scores["plain"]["text_area"] == 0 and scores["one frame of text"]["text_area"] == 0
    subs, bug, rolling = scores["subtitles"], scores["corner logo"], scores["credits"]
    assert subs["text_artificial_area"] > 0.02  # the same place, keyframe after keyframe
    assert 0 < bug["text_artificial_area"] < 0.02  # small, but in a corner
    assert rolling["text_area"] > 0.05  # a lot of text, moving
    assert rolling["text_artificial_area"] < rolling["text_area"]  # it does not stay put


def test_reading_text_reports_nothing_to_microsoft(tmp_path: Path) -> None:
    """onnxruntime 1.32 keeps a device id and an event store for upload under
    ~/.cache/Microsoft and a session file in the temp directory, unless told not to before
    its first session; a library caller, with none of capflow's environment set, too."""
    import os
    import subprocess
    import sys

    home, temp = tmp_path / "home", tmp_path / "temp"
    home.mkdir()
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(home), TMPDIR=str(temp), PYTHONPATH=str(Path(__file__).parents[2]))
    code = (
        "import numpy as np\n"
        "from tasks.text_overlay import TextOverlayConfig, detect_text\n"
        "print(detect_text(np.zeros((90, 160, 3), np.uint8), TextOverlayConfig()))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    assert not (home / ".cache" / "Microsoft").exists()
    assert sorted(p.name for p in temp.iterdir()) == []


def test_the_text_filter_is_opt_in(text_videos: dict[str, Path]) -> None:
    [by_default] = clips_of(text_videos["subtitles"])
    assert by_default.rejection is None  # scored, not refused
    [strict] = clips_of(text_videos["subtitles"], text_overlay={"max_artificial_area": 0.01})
    assert isinstance(strict.rejection, Rejection)
    assert strict.rejection.reason == RejectReason.TEXT_OVERLAY
    assert "text_overlay.max_artificial_area" in strict.rejection.detail
    [clean] = clips_of(text_videos["plain"], text_overlay={"max_artificial_area": 0.01})
    assert clean.rejection is None
