from __future__ import annotations

import numpy as np

from storage.records import ClipRecord
from storage.types import ClipSpan, Keyframe
from tasks.backends.describe import Describer, dominant_colours, motion_phrase
from tasks.caption import caption_clips


def solid(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.full((90, 160, 3), rgb, dtype=np.uint8)


def test_named_colours() -> None:
    assert dominant_colours(solid((11, 22, 64)))[0][0] == "dark blue"
    assert dominant_colours(solid((210, 96, 30)))[0][0] == "orange"
    assert dominant_colours(solid((5, 5, 5)))[0][0] == "black"


def test_motion_words_follow_speed_and_direction() -> None:
    assert motion_phrase([(t / 25, 0.4, 0.0) for t in range(50)]) == "fast motion to the right"
    assert motion_phrase([(t / 25, 0.0, -0.06) for t in range(50)]) == "slow motion upwards"
    assert motion_phrase([(t / 25, 0.0, 0.0) for t in range(50)]) == "almost no motion"


def test_diffsw_shape_one_caption_per_keyframe_then_a_timed_summary() -> None:
    track = tuple((1.0 + t / 25, -0.3, 0.0) for t in range(100))
    kfs = [
        Keyframe(1.0, solid((11, 22, 64))),
        Keyframe(3.0, solid((11, 22, 64))),
        Keyframe(5.0, solid((200, 40, 40))),
    ]
    clip = ClipRecord(ClipSpan(0, 1.0, 5.0, 0.01, track), keyframes=kfs)
    [caption] = caption_clips([clip], Describer())
    assert [d.t for d in caption.differential] == [1.0, 3.0, 5.0]
    assert caption.differential[0].text.startswith("A dark scene dominated by dark blue")
    assert caption.differential[1].text.startswith("From 1.0 s to 3.0 s: fast motion to the left")
    assert "red appears" in caption.differential[2].text
    assert caption.text.startswith("A dark blue scene with fast motion to the left.")
    assert "At 1.0 s:" in caption.text and "From 3.0 s to 5.0 s" in caption.text
    assert (caption.model, caption.mode) == ("describe", "diffsw")
