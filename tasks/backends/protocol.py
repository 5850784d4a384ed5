"""What a model backend offers the captioning stage: batched generation over images+text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class ModelNotAvailable(RuntimeError):
    """A configured model cannot be loaded; the message names the setting to change."""


class BackendOutOfMemory(RuntimeError):
    """The accelerator ran out of memory for this batch; a smaller one may fit."""


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    prompt: str
    images: list[np.ndarray] = field(default_factory=list)  # RGB uint8, in prompt order


class VisionLanguageModel(Protocol):
    name: str

    def generate(self, requests: list[GenerationRequest]) -> list[str]:
        """One reply per request, in order. Raises BackendOutOfMemory when a batch won't fit."""
        ...
