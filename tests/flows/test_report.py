"""The run report's pieces: histograms, and free text made inert for markdown."""

from __future__ import annotations

from flows.curate import AESTHETIC_BINS, MOTION_BINS, _histogram, md_text


def test_histograms_count_every_value_once_with_closed_last_bin() -> None:
    assert _histogram([0.0, 0.99, 1.0, 9.5, 10.0], AESTHETIC_BINS) == [2, 1] + [0] * 7 + [2]
    assert _histogram([0.05, 0.5, 1.0], MOTION_BINS) == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert _histogram([], MOTION_BINS) == [0] * 10


def test_error_text_cannot_inject_markup_into_the_artifact() -> None:
    text = md_text('key <img src=x onerror="x()"> | [link](http://evil)\nnext')
    assert "<img" not in text and "\n" not in text
    assert "\\|" in text and "\\[link]" in text
