"""The model-free describer: the offline default captioner, in DiffSW's shape.

It writes factual sentences from measured properties only (named dominant colours,
brightness, detail, motion amount and direction from the clip's motion track, shot
timing): a caption of keyframe 0, a differential caption per later keyframe saying what
changed, and a timed summary. It sees nothing a VLM would (no objects, no actions), and
its rows say so: `caption_model = "describe"`. Its point is a pipeline that runs end to
end offline with captions that are true, so that search over them is meaningful.
"""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np

from storage.records import ClipRecord
from storage.types import Caption, DiffCaption, Keyframe, Rejection
from tasks.feed import ClipFeed, Done, caption_list

NAME = "describe"
PROMPT_VERSION = "describe-v1"

_HUES = [
    (15, "red"),
    (40, "orange"),
    (70, "yellow"),
    (160, "green"),
    (200, "cyan"),
    (255, "blue"),
    (290, "purple"),
    (335, "pink"),
    (360, "red"),
]


def _hsv(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rgb = img.reshape(-1, 3).astype(np.float32) / 255.0
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    delta = mx - mn
    safe = np.where(delta == 0, 1, delta)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    hue = (
        np.select(
            [mx == r, mx == g],
            [((g - b) / safe) % 6, (b - r) / safe + 2],
            (r - g) / safe + 4,
        )
        * 60.0
    )
    sat = np.where(mx == 0, 0, delta / np.where(mx == 0, 1, mx))
    return hue, sat, mx


def colour_names(img: np.ndarray) -> np.ndarray:
    """A colour name per pixel (of a subsampled image)."""
    step = max(1, img.shape[1] // 64)
    hue, sat, val = _hsv(img[::step, ::step])
    names = np.empty(hue.shape, dtype=object)
    for i, (h, s, v) in enumerate(zip(hue, sat, val, strict=True)):
        if v < 0.12:
            names[i] = "black"
        elif s < 0.2:
            names[i] = (
                "white"
                if v > 0.85
                else "light grey"
                if v > 0.6
                else "grey"
                if v > 0.3
                else "dark grey"
            )
        else:
            base = next(n for limit, n in _HUES if h < limit)
            names[i] = f"dark {base}" if v < 0.45 else f"light {base}" if s < 0.5 else base
    return names


def dominant_colours(img: np.ndarray, min_share: float = 0.08) -> list[tuple[str, float]]:
    names, counts = np.unique(colour_names(img), return_counts=True)
    order = np.argsort(-counts)
    total = counts.sum()
    return [(str(names[i]), counts[i] / total) for i in order if counts[i] / total >= min_share][:3]


def _luma(img: np.ndarray) -> float:
    return float((img.astype(np.float32) @ np.array([0.299, 0.587, 0.114])).mean() / 255.0)


def _brightness_word(luma: float) -> str:
    return (
        "dark"
        if luma < 0.25
        else "dim"
        if luma < 0.4
        else "bright"
        if luma < 0.7
        else "very bright"
    )


def _detail_word(img: np.ndarray) -> str:
    g = img.astype(np.float32).mean(axis=2)
    edges = (np.abs(np.diff(g, axis=1)) > 12).mean()
    return (
        "plain"
        if edges < 0.01
        else "simple"
        if edges < 0.05
        else "detailed"
        if edges < 0.15
        else "busy"
    )


def _direction(vx: float, vy: float) -> str:
    horiz = "to the right" if vx > 0 else "to the left"
    vert = "upwards" if vy < 0 else "downwards"
    if abs(vx) > 2 * abs(vy):
        return horiz
    if abs(vy) > 2 * abs(vx):
        return vert
    return f"{vert} and {horiz}"


def motion_phrase(track: list[tuple[float, float, float]]) -> str:
    """How much and which way the picture moves, from the mean image velocity."""
    if not track:
        return "no measurable motion"
    vx = float(np.mean([v[1] for v in track]))
    vy = float(np.mean([v[2] for v in track]))
    speed = float(np.hypot(vx, vy))  # frame sizes per second
    if speed < 0.03:
        return "almost no motion"
    word = "slow" if speed < 0.12 else "moderate" if speed < 0.25 else "fast"
    return f"{word} motion {_direction(vx, vy)}"


def describe_frame(kf: Keyframe) -> str:
    colours = dominant_colours(kf.image)
    main = colours[0][0] if colours else "mixed colours"
    others = [c for c, _ in colours[1:]]
    text = f"A {_brightness_word(_luma(kf.image))} scene dominated by {main}"
    if others:
        text += " with areas of " + " and ".join(others)
    return text + f"; the picture is {_detail_word(kf.image)}."


def describe_change(prev: Keyframe, cur: Keyframe, track: list[tuple[float, float, float]]) -> str:
    before = {c for c, _ in dominant_colours(prev.image)}
    after = {c for c, _ in dominant_colours(cur.image)}
    parts = [motion_phrase(track)]
    parts += [f"{c} appears" for c in sorted(after - before)]
    parts += [f"{c} disappears" for c in sorted(before - after)]
    delta = _luma(cur.image) - _luma(prev.image)
    if abs(delta) > 0.06:
        parts.append("the scene gets " + ("brighter" if delta > 0 else "darker"))
    if len(parts) == 1:
        parts.append("the colours stay the same")
    return f"From {prev.t:.1f} s to {cur.t:.1f} s: " + "; ".join(parts) + "."


def summarize(clip: ClipRecord, steps: list[DiffCaption]) -> str:
    span = clip.span
    track = list(span.motion_track)
    first = clip.keyframes[0].image
    main = dominant_colours(first)
    colour = main[0][0] if main else "mixed"
    has_tone = colour.split()[0] in ("dark", "light")
    head = f"{colour} scene" if has_tone else f"{_brightness_word(_luma(first))} {colour} scene"
    lines = [
        f"A {head} with {motion_phrase(track)}.",
        f"The shot runs {span.duration_s:.1f} s, from {span.start_s:.1f} s to {span.end_s:.1f} s.",
        f"At {steps[0].t:.1f} s: {steps[0].text}",
    ]
    lines += [s.text for s in steps[1:]]
    return " ".join(lines)


class Describer:
    """Captioner backend `describe`: DiffSW's three steps without a model.

    In `fast` mode it writes the same summary and keeps no differential steps, as a
    one-call captioner would.
    """

    name = NAME
    prompt_version = PROMPT_VERSION

    def __init__(self, mode: str = "diffsw") -> None:
        self.mode = mode

    def stream(self, feed: ClipFeed, done: Done) -> None:
        while (ready := feed.take(16, wait=True)) is not None:
            for clip in ready:
                clip.caption = self._caption_one(clip)
                done(clip, None)

    def caption(self, clips: list[ClipRecord]) -> list[Caption | Rejection]:
        return caption_list(self, clips)

    def _caption_one(self, clip: ClipRecord) -> Caption:
        started = time.perf_counter()
        kfs = clip.keyframes
        steps = [DiffCaption(kfs[0].t, describe_frame(kfs[0]))]
        for prev, cur in pairwise(kfs):
            window = [m for m in clip.span.motion_track if prev.t <= m[0] <= cur.t]
            steps.append(DiffCaption(cur.t, describe_change(prev, cur, window)))
        text = summarize(clip, steps)
        kept = steps if self.mode == "diffsw" else []
        seconds = round(time.perf_counter() - started, 6)
        return Caption(text, kept, self.name, self.mode, self.prompt_version, seconds)


def summarize_steps(steps: list[DiffCaption]) -> str:
    """Re-summarise stored steps without frames: the steps in time order, timed."""
    return " ".join(f"At {s.t:.1f} s: {s.text}" for s in sorted(steps, key=lambda s: s.t))
