"""Static clips: a still picture encoded as video, a slide of a slide show.

Two signals, both free: the decode pass's image motion (its global translation per frame,
`span.motion_track`), integrated over the clip, and the keyframes themselves. A clip is
static when the picture never moves away from where it started by more than
`max_static_excursion` of a frame (a slow pan of 1 % of the width a second gets there in
a second) and no keyframe differs from the first by more than `max_static_change` (mean
absolute difference of small grey thumbnails, 0..1: a still with film grain stays under
0.004; a 20x20 box crossing a 320x180 still background reaches 0.009).

Why not the mean frame change (the decode pass's motion score) or codec motion vectors, as
NeMo Curator does: on the test videos a still with film grain changes more from frame to
frame (0.004) than a 3 px/s pan (0.0006), and its motion vectors are larger too (0.0013 of
width+height against 0.0003; NeMo's threshold of 0.00098 calls the pan, an 8 px/s pan and
a moving object static, and the grainy still moving). Both are in the run's rows anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storage.records import ClipRecord
from storage.types import Keyframe, Rejection, RejectReason

STAGE = "motion"


@dataclass(frozen=True)
class MotionConfig:
    max_static_excursion: float = 0.01  # frame widths/heights, the clip's largest excursion
    max_static_change: float = 0.006  # 0..1, first keyframe against the others
    filter_static: bool = True  # static clips go to quarantine (`static`)

    def build(self) -> MotionStage:
        return MotionStage(self)


def excursion(track: tuple[tuple[float, float, float], ...]) -> float:
    """How far the image moves from where the clip started, at most, in frame widths or
    heights: the running sum of velocity x time, largest on either axis. A pan that goes
    and comes back counts; noise, which wanders a little each way, hardly does."""
    if len(track) < 2:
        return 0.0
    arr = np.asarray(track, dtype=np.float64)
    dt = np.diff(arr[:, 0], prepend=arr[0, 0])
    path = np.cumsum(arr[:, 1:] * dt[:, None], axis=0)
    return float(np.abs(path).max())


def _thumb(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    grey = Image.fromarray(image).convert("L").resize((64, 36), Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float32) / 255.0


def keyframe_change(keyframes: list[Keyframe]) -> float:
    """The largest mean |difference| between the first keyframe and a later one, 0..1."""
    if len(keyframes) < 2:
        return 0.0
    first = _thumb(keyframes[0].image)
    return float(max(np.abs(_thumb(k.image) - first).mean() for k in keyframes[1:]))


class MotionStage:
    name = STAGE
    columns = (
        pa.field("motion_excursion", pa.float32()),
        pa.field("keyframe_change", pa.float32()),
        pa.field("static", pa.bool_()),
    )
    needs = ("keyframes",)
    provides = ("static",)

    def __init__(self, config: MotionConfig) -> None:
        self.config = config

    def __call__(self, clip: ClipRecord) -> ClipRecord | Rejection:
        moved = excursion(clip.span.motion_track)
        changed = keyframe_change(clip.keyframes)
        cfg = self.config
        static = moved < cfg.max_static_excursion and changed < cfg.max_static_change
        clip.scores.update(
            motion_excursion=round(moved, 5), keyframe_change=round(changed, 5), static=static
        )
        if static and cfg.filter_static:
            return Rejection(
                STAGE,
                RejectReason.STATIC,
                f"the picture moves {moved:.4f} of a frame (motion.max_static_excursion "
                f"{cfg.max_static_excursion}) and keyframes differ by {changed:.4f} "
                f"(motion.max_static_change {cfg.max_static_change})",
                (clip.span.start_s, clip.span.end_s),
                round(moved, 5),
            )
        return clip
