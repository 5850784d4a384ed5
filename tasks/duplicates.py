"""Near-duplicate clips: the same footage under another key, re-encoded, rescaled, trimmed.

Two parts. Per clip (a stage of the stage list), a visual fingerprint from the keyframes
already decoded: each keyframe blurred and shrunk to 8x8 in three colour channels, the
clip's mean of those, centred and normalised (192 numbers; re-encoding and rescaling
hardly move it, a few per cent of crop shifts it by less than a cell). At landing
(flows/dedup.py), each new clip is compared with the clips in LanceDB and with the other
new clips of its batch, on the CLIP image embedding where one is configured and on the
fingerprint otherwise; the rule that decides is here, as a plain function, so the outcome
depends on the set of clips and never on the order they arrived in:

    a clip is a duplicate of the first clip, in stable order (bucket, key, start), that is
    at least `min_similarity` alike and comes before it; a clip with none is kept.

A duplicate stays a row (`duplicate_of`, `duplicate_similarity`); search and exports leave
it out unless asked. Clips of the same object are not compared by default: a video that
cuts back to the same camera is one video, not two copies (`within_object`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storage.records import ClipRecord
from storage.types import Keyframe, Rejection

STAGE = "duplicates"
FINGERPRINT_COLUMN = "visual_fingerprint"
GRID = 8
FINGERPRINT_DIM = GRID * GRID * 3


@dataclass(frozen=True)
class DuplicatesConfig:
    enabled: bool = True
    # Cosine similarity at which two clips count as one. CLIP's is NeMo Curator's 0.9;
    # the fingerprint's was measured on copies (re-encoded, rescaled, 6 % cropped: >= 0.977;
    # a 3 s clip trimmed by 1 s: 0.956) against distinct shots (<= 0.41, all pairs).
    min_similarity_clip: float = 0.9
    min_similarity_fingerprint: float = 0.92
    within_object: bool = False  # also compare clips of the same video
    neighbours: int = 16  # nearest clips read from the table per new clip
    exact_search_max_rows: int = 1_000_000  # an exact scan up to here, the ANN index past it

    def build(self) -> DuplicatesStage:
        return DuplicatesStage(self)

    def threshold(self, column: str) -> float:
        return (
            self.min_similarity_fingerprint
            if column == FINGERPRINT_COLUMN
            else self.min_similarity_clip
        )


def frame_fingerprint(image: np.ndarray) -> np.ndarray:
    """One frame as 8x8x3 block means of its blurred picture (0..1)."""
    from PIL import Image, ImageFilter

    img = Image.fromarray(image).convert("RGB")
    img = img.resize((64, 64), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(3))
    small = img.resize((GRID, GRID), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32).reshape(-1) / 255.0


def fingerprint(keyframes: Sequence[Keyframe]) -> list[float]:
    """The clip's fingerprint: its keyframes' mean, centred and of unit length. Never
    null (LanceDB refuses null vectors): a flat picture keeps its colour uncentred, and
    a black one (or none) is the constant unit vector, alike to every other black one."""
    mean = np.mean([frame_fingerprint(k.image) for k in keyframes], axis=0) if keyframes else None
    for vector in [] if mean is None else [mean - mean.mean(), mean]:
        norm = float(np.linalg.norm(vector))
        if norm > 1e-6:
            return (vector / norm).astype(np.float32).tolist()
    return [float(1 / np.sqrt(FINGERPRINT_DIM))] * FINGERPRINT_DIM


class DuplicatesStage:
    """Records the fingerprint; the decision waits for landing, where the table is."""

    name = STAGE
    columns = (
        pa.field(FINGERPRINT_COLUMN, pa.list_(pa.float32(), FINGERPRINT_DIM)),
        pa.field("duplicate_of", pa.string()),
        pa.field("duplicate_similarity", pa.float32()),
    )
    needs = ("keyframes",)
    provides = ()

    def __init__(self, config: DuplicatesConfig) -> None:
        self.config = config

    def __call__(self, clip: ClipRecord) -> ClipRecord | Rejection:
        clip.scores[FINGERPRINT_COLUMN] = fingerprint(clip.keyframes)
        return clip


@dataclass(frozen=True)
class Candidate:
    """A clip as the rule sees it: its id, its object and its place in stable order."""

    clip_id: str
    bucket: str
    key: str
    start_s: float

    @property
    def order(self) -> tuple[str, str, float, str]:
        return (self.bucket, self.key, self.start_s, self.clip_id)

    @property
    def obj(self) -> tuple[str, str]:
        return (self.bucket, self.key)


@dataclass(frozen=True)
class Match:
    of: str
    similarity: float


def first_match(
    clip: Candidate,
    neighbours: Sequence[tuple[Candidate, float]],
    threshold: float,
    within_object: bool,
) -> Match | None:
    """The rule: the first neighbour in stable order that is alike enough and comes
    before the clip, or None (the clip is kept)."""
    alike = [
        (n, s)
        for n, s in neighbours
        if s >= threshold
        and n.order < clip.order
        and n.clip_id != clip.clip_id
        and (within_object or n.obj != clip.obj)
    ]
    if not alike:
        return None
    best, sim = min(alike, key=lambda pair: pair[0].order)
    return Match(best.clip_id, round(float(sim), 5))
