"""Clean-up of model text before it lands: stock openers stripped, repetition measured."""

from __future__ import annotations

import re

# Openers that say nothing ("The video shows ..."); stripped, the sentence starts at its content.
_STOCK_OPENERS = re.compile(
    r"^\s*(?:in\s+)?(?:this|the)\s+(?:video|clip|image|frame|footage|scene)\s*"
    r"(?:shows|depicts|features|captures|presents|displays|begins with|opens with|is)?\s*[,:]?\s*",
    re.IGNORECASE,
)


def clean_caption(text: str) -> str:
    """Trim, strip a stock opener, and restore the capital letter it took."""
    text = " ".join(text.split())
    stripped = _STOCK_OPENERS.sub("", text, count=1)
    if stripped and stripped != text:
        text = stripped[0].upper() + stripped[1:]
    return text


def repetition_ratio(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one: 0 for fresh text, near 1 for a loop."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return round(1 - len(set(grams)) / len(grams), 4)
