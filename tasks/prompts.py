"""Versioned prompt templates for the four ShareCaptioner-Video modes.

Paraphrased from ShareGPT4Video's released captioner, with its known faults fixed:
timestamps are each keyframe's true PTS (never index x 2 s), a differential step names
both frames, and the summary carries an instruction (the batch script sent none).
Change any wording -> bump PROMPT_VERSION, so rows say which prompts made them.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.types import DiffCaption

PROMPT_VERSION = "diffsw-v1"


def first_frame_prompt(t: float) -> str:
    return (
        f"This image is the first frame of a video, at {t:.2f} seconds. Describe it in "
        "detail: the setting, the objects and people, their attributes and positions, "
        "colours, lighting and the camera's framing."
    )


def differential_prompt(prev_t: float, t: float, previous_caption: str, stacked: bool) -> str:
    layout = (
        "The image shows two frames of a video, the earlier one on top and the later one below."
        if stacked
        else "The first image is the earlier frame of a video and the second the later one."
    )
    return (
        f"{layout} The earlier frame is at {prev_t:.2f} seconds, the later at {t:.2f} "
        f"seconds. What happened before: {previous_caption}\n"
        f"Describe what changed between {prev_t:.2f} s and {t:.2f} s: actions, camera "
        "motion, objects that appear or leave, and changed attributes."
    )


def summary_prompt(steps: Sequence[DiffCaption], words: int) -> str:
    lines = [f"At {s.t:.2f} s: {s.text}" for s in steps]
    return (
        "Below are descriptions of a video's keyframes in time order; the first describes "
        "the opening frame and each later one what changed since the previous keyframe.\n"
        + "\n".join(lines)
        + f"\nWrite one detailed caption of the whole video, in chronological order, of "
        f"about {words} words. Describe the content directly; do not mention frames or "
        "timestamps."
    )


def fast_prompt(times: Sequence[float]) -> str:
    stamps = ", ".join(f"<IMAGE {i}> at {t:.2f} s" for i, t in enumerate(times))
    return (
        "The image stacks keyframes of one video from top to bottom, labelled "
        f"{stamps}. Describe the video in detail and in chronological order: the scene, "
        "the objects and people, their actions, and the camera's motion."
    )


def recaption_prompt(prompt: str, words: int) -> str:
    return (
        f"Here is a short description of a video: {prompt}\nExpand it into a detailed "
        f"video caption of about {words} words, in chronological order, describing the "
        "scene, subjects, actions, camera motion, lighting and style."
    )
