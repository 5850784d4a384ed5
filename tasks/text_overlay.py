"""Overlaid text: subtitles, logos, credits, captions burned into the picture.

PP-OCRv4 (the ONNX models shipped in `rapidocr-onnxruntime`'s wheel; nothing is downloaded)
runs on the clip's keyframes, scaled to at most `max_side` pixels. Detection alone boxes
any sharp-edged blob (on the test scenes, plain coloured discs covered 29 % of the frame),
so a box counts as text only when the recogniser reads at least `min_chars` letters or
digits in it with confidence `min_confidence` (one-letter logos are missed; recognition
adds a few ms a box). What a clip records, as shares of the frame (0..1),
averaged over its keyframes:

- `text_area`: everything the detector boxed;
- `text_artificial_area`: the part that is overlay rather than scene text, as NVIDIA's
  Cosmos-Curate tells them apart: text that stays where it is across keyframes (a box
  overlapping one in another keyframe, IoU >= `persist_iou`: subtitles, logos, tickers),
  or text in a corner margin (a box inside the outer `corner_margin` of the frame on both
  axes: watermarks, channel bugs);
- `text_boxes`: boxes per keyframe.

The filter is opt-in, as the field's thresholds vary with the data: until
`text_overlay.max_area` or `max_artificial_area` is set, scores are recorded and nothing is
refused (`text_overlay`). Text that flashes up for one frame between keyframes is not seen,
which is what a clip-level overlay score should say about it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from storage.records import ClipRecord
from storage.types import Rejection, RejectReason

STAGE = "text_overlay"
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as shares of width and height


@dataclass(frozen=True)
class TextOverlayConfig:
    max_side: int = 480  # keyframes are scaled to this long side before detection
    max_frames: int = 4  # keyframes read per clip, evenly spaced (0.01-0.07 s CPU each)
    persist_iou: float = 0.3  # the same box in two keyframes: overlay, not scene text
    corner_margin: float = 0.15  # share of width and height that counts as a corner
    min_chars: int = 2  # letters or digits read in a box for it to count as text
    min_confidence: float = 0.7  # the recogniser's confidence in what it read
    max_area: float | None = None  # refuse clips whose text covers more than this share
    max_artificial_area: float | None = None  # ... or whose overlay text covers more

    def build(self) -> TextOverlayStage:
        return TextOverlayStage(self)


_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _engine(max_side: int) -> Any:
    # onnxruntime's telemetry (flows.environment) off for library callers too: the switch
    # is read once, before the runtime's first session. A user's own setting wins.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime
    from rapidocr_onnxruntime import RapidOCR

    if os.environ["ORT_DISABLE_TELEMETRY"] == "1":
        onnxruntime.disable_telemetry_events()

    # RapidOCR's default scales the short side *up* to 736 px: 0.19 s a 320x180 frame.
    # Capped at max_side on the long side it reads the same text in 0.01-0.07 s.
    return RapidOCR(det_limit_side_len=max_side, det_limit_type="max")


def detect_text(image: np.ndarray, cfg: TextOverlayConfig) -> list[Box]:
    """Boxes of legible text in an RGB frame, as shares of its width and height."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = min(1.0, cfg.max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    sh, sw = image.shape[:2]
    with _LOCK:  # one detector per process, shared by the preparing threads
        found, _ = _engine(cfg.max_side)(image, use_cls=False, use_rec=True)
    boxes = []
    for quad, text, confidence in found if found is not None else []:
        if float(confidence) < cfg.min_confidence or sum(c.isalnum() for c in text) < cfg.min_chars:
            continue
        pts = np.asarray(quad, dtype=np.float64)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        boxes.append((max(0.0, x0 / sw), max(0.0, y0 / sh), min(1.0, x1 / sw), min(1.0, y1 / sh)))
    return boxes


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def iou(a: Box, b: Box) -> float:
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def covered(boxes: list[Box], grid: int = 64) -> float:
    """The share of the frame the boxes cover (overlaps counted once)."""
    if not boxes:
        return 0.0
    mask = np.zeros((grid, grid), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[int(y0 * grid) : max(int(y0 * grid) + 1, int(np.ceil(y1 * grid))),
             int(x0 * grid) : max(int(x0 * grid) + 1, int(np.ceil(x1 * grid)))] = True  # fmt: skip
    return float(mask.mean())


def in_corner(box: Box, margin: float) -> bool:
    x0, y0, x1, y1 = box
    left, right = x1 <= margin, x0 >= 1 - margin
    top, bottom = y1 <= margin, y0 >= 1 - margin
    return (left or right) and (top or bottom)


@dataclass(frozen=True)
class TextScores:
    area: float
    artificial_area: float
    boxes: float


def score_frames(frames: list[list[Box]], cfg: TextOverlayConfig) -> TextScores:
    """Per-keyframe boxes to the clip's scores (see the module's docstring)."""
    if not frames:
        return TextScores(0.0, 0.0, 0.0)
    areas, artificial = [], []
    for i, boxes in enumerate(frames):
        others = [b for j, other in enumerate(frames) if j != i for b in other]
        overlay = [
            b
            for b in boxes
            if in_corner(b, cfg.corner_margin) or any(iou(b, o) >= cfg.persist_iou for o in others)
        ]
        areas.append(covered(boxes))
        artificial.append(covered(overlay))
    return TextScores(
        round(float(np.mean(areas)), 5),
        round(float(np.mean(artificial)), 5),
        round(float(np.mean([len(b) for b in frames])), 3),
    )


def spread(items: list[Any], n: int) -> list[Any]:
    """At most n of the items, evenly spaced, the first and the last among them."""
    if len(items) <= n:
        return list(items)
    if n <= 1:
        return list(items[:1])
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


class TextOverlayStage:
    name = STAGE
    columns = (
        pa.field("text_area", pa.float32()),
        pa.field("text_artificial_area", pa.float32()),
        pa.field("text_boxes", pa.float32()),
    )
    needs = ("keyframes",)
    provides = ()

    def __init__(self, config: TextOverlayConfig) -> None:
        self.config = config

    def __call__(self, clip: ClipRecord) -> ClipRecord | Rejection:
        cfg = self.config
        frames = [detect_text(k.image, cfg) for k in spread(clip.keyframes, cfg.max_frames)]
        scores = score_frames(frames, cfg)
        clip.scores.update(
            text_area=scores.area,
            text_artificial_area=scores.artificial_area,
            text_boxes=scores.boxes,
        )
        clip.notes[STAGE] = frames
        limits = (
            ("text area", scores.area, "max_area", cfg.max_area),
            ("overlay text area", scores.artificial_area, "max_artificial_area",
             cfg.max_artificial_area),
        )  # fmt: skip
        too_much = [
            f"{what} {value:.3f} > text_overlay.{setting} {limit}"
            for what, value, setting, limit in limits
            if limit is not None and value > limit
        ]
        if too_much:
            span = (clip.span.start_s, clip.span.end_s)
            return Rejection(STAGE, RejectReason.TEXT_OVERLAY, "; ".join(too_much), span,
                             scores.artificial_area)  # fmt: skip
        return clip
