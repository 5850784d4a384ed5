from __future__ import annotations

from pathlib import Path

import pytest

from storage.types import ProbeInfo, Rejection, RejectReason
from tasks import media
from tasks.probe import ProbeConfig, probe_video
from tasks.transitions import ShotAnalysis, TransitionConfig, analyse_shots
from tests.helpers import make_media


def analyse(path: Path) -> ShotAnalysis:
    probe = probe_video(path, ProbeConfig())
    assert isinstance(probe, ProbeInfo)
    result = analyse_shots(path, probe, TransitionConfig())
    assert isinstance(result, ShotAnalysis)
    return result


def test_a_cut_is_found_at_the_first_frame_of_the_new_shot(samples: dict) -> None:
    result = analyse(samples["night_harbour"].path)  # cut at 5.0 s = frame 125 at 25 fps
    assert [(t.kind, t.start_frame, t.end_frame) for t in result.transitions] == [("cut", 125, 125)]
    assert result.transitions[0].start_s == pytest.approx(5.0)


def test_two_cuts_in_three_shots(samples: dict) -> None:
    result = analyse(samples["fractal_bars"].path)
    assert [(t.kind, t.start_frame) for t in result.transitions] == [("cut", 100), ("cut", 200)]


def test_a_dissolve_is_one_gradual_transition_over_its_range(samples: dict) -> None:
    result = analyse(samples["sunset_meadow"].path)  # 1 s dissolve from 4.0 s to 5.0 s
    assert len(result.transitions) == 1
    t = result.transitions[0]
    assert t.kind == "gradual"
    assert abs(t.start_frame - 100) <= 2 and abs(t.end_frame - 125) <= 2


def test_a_flash_is_not_a_transition(tmp_path: Path) -> None:
    # A still scene whose brightness jumps for two frames at 2 s and comes back.
    video = make_media(
        tmp_path / "flash.mp4",
        "color=c=0x336699:s=160x90:r=25,drawbox=x=40:y=20:w=40:h=40:color=0xcc8833:t=fill,"
        "eq=brightness='if(between(t,2,2.07),0.6,0)':eval=frame",
        4,
    )
    assert analyse(video).transitions == []


def test_steady_motion_is_not_a_transition(samples: dict) -> None:
    result = analyse(samples["night_harbour"].path)
    assert all(t.start_s > 4.5 for t in result.transitions)  # the moving box shot has none


def test_frame_times_come_from_pts_so_vfr_is_right(tmp_path: Path) -> None:
    # First second at 10 fps, then 30 fps: frame indices no longer map to index / fps.
    vfr = tmp_path / "vfr.mp4"
    res = media.run(
        [
            media.ffmpeg_path(),
            "-v",
            "error",
            "-filter_complex",
            "testsrc2=s=160x90:r=10:d=1[a];color=c=red:s=160x90:r=30:d=2[b];"
            "[a][b]concat=n=2:v=1:a=0[v]",
            "-map",
            "[v]",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-y",
            str(vfr),
        ],
        timeout_s=60,
    )
    assert res.returncode == 0, res.stderr
    result = analyse(vfr)
    assert result.times[10] == pytest.approx(1.0, abs=0.01)  # frame 10 is the first at 30 fps
    assert result.times[13] == pytest.approx(1.1, abs=0.01)
    cut = result.transitions[0]
    assert cut.start_frame == 10 and cut.start_s == pytest.approx(1.0, abs=0.01)


def test_undecodable_input_is_a_rejection(samples: dict) -> None:
    probe = ProbeInfo("mov", 10.0, 320, 180, 25.0, "h264", False)
    result = analyse_shots(samples["not_a_video"].path, probe, TransitionConfig())
    assert isinstance(result, Rejection) and result.reason == RejectReason.DECODE_FAILED


def test_the_detector_holds_a_bounded_number_of_frames() -> None:
    import numpy as np

    from tasks.transitions import TransitionDetector

    cfg = TransitionConfig()
    detector = TransitionDetector(25.0, cfg)
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (27, 48, 3)).astype(np.float32)
    held = 0
    for i in range(3000):  # two minutes at 25 fps, a cut every 10 s
        if i % 250 == 0:
            scene = rng.integers(0, 255, (27, 48, 3)).astype(np.float32)
        detector.push(i / 25, scene + rng.normal(0, 1, scene.shape).astype(np.float32))
        held = max(held, len(detector.frames) + len(detector._run_frames))
    cuts = [t.start_frame for t in detector.finish() if t.kind == "cut"]
    assert cuts == list(range(250, 3000, 250))
    assert held <= detector.lookahead + cfg.flash_frames + 3 + detector.max_run + 1
