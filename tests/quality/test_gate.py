from __future__ import annotations

import math

import pytest

from quality.gate import BatchRejected, run_gate
from quality.suites import QualityConfig

DIM = 4
UNIT = [1 / math.sqrt(DIM)] * DIM


def good(name: str, **changes: object) -> dict:
    row = {
        "clip_id": name,
        "caption": "A dark blue scene with fast motion to the right.",
        "duration_s": 3.0,
        "aesthetic_score": 5.0,
        "text_embedding": UNIT,
    }
    row.update(changes)
    return row


def test_a_clean_batch_passes_whole() -> None:
    rows = [good("a"), good("b")]
    result = run_gate(rows, QualityConfig(), DIM)
    assert result.passed == rows and result.failed == []


@pytest.mark.parametrize(
    ("defect", "expectation"),
    [
        ({"caption": None}, "caption_present"),
        ({"caption": "too short"}, "caption_length"),
        ({"duration_s": 0.1}, "duration_in_bounds"),
        ({"aesthetic_score": 12.0}, "aesthetic_in_range"),
        ({"text_embedding": [0.5] * 3}, "embedding_dimension"),
        ({"text_embedding": [1.0] * DIM}, "embedding_unit_norm"),
        ({"clip_id": None}, "clip_id_present"),
    ],
)
def test_each_row_expectation_catches_its_defect(defect: dict, expectation: str) -> None:
    rows = [good("a"), good("b", **defect), good("c")]
    result = run_gate(rows, QualityConfig(), DIM)
    assert result.passed == [rows[0], rows[2]]
    [(row, names)] = result.failed
    assert row is rows[1] and expectation in names


def test_duplicate_ids_reject_the_whole_batch() -> None:
    with pytest.raises(BatchRejected, match="clip_id_unique"):
        run_gate([good("a"), good("b"), good("a")], QualityConfig(), DIM)
