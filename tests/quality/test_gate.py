"""Each check catches its defect on a crafted batch and passes a clean one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from quality.gate import BatchRejected, build_data_docs, gate_clips, gate_sources
from quality.suites import QualityConfig

DIM = 4
UNIT = [1 / math.sqrt(DIM)] * DIM


def clip(name: str, **changes: object) -> dict:
    row = {
        "clip_id": name,
        "start_s": 0.5,
        "end_s": 4.5,
        "duration_s": 4.0,
        "transitions_inside": 0,
        "aesthetic_score": 5.0,
        "motion_score": 0.01,
        "keyframe_times": [0.52, 2.52],
        "caption": f"A dark blue scene with a box moving right, shot {name}.",
        "caption_repetition": 0.0,
        "differential_captions": [{"t": 0.52, "text": "a"}, {"t": 2.52, "text": "b"}],
        "text_embedding": UNIT,
    }
    row.update(changes)
    return row


def source(**changes: object) -> dict:
    row = {
        "has_video_stream": True,
        "decoded_frames": 250,
        "duration_s": 10.0,
        "fps": 25.0,
        "width": 320,
        "height": 180,
    }
    row.update(changes)
    return row


def test_a_clean_batch_passes_whole() -> None:
    rows = [clip("a"), clip("b"), clip("c")]
    result = gate_clips(rows, QualityConfig(), DIM, expected=3)
    assert result.passed == rows and result.failed == []
    assert set(result.evaluated) >= {"clip_id_unique", "caption_no_boilerplate"}
    assert not any(result.failures.values())


@pytest.mark.parametrize(
    ("defect", "check"),
    [
        ({"clip_id": None}, "clip_id_present"),
        ({"duration_s": 0.1}, "clip_duration_in_bounds"),
        ({"transitions_inside": 1}, "clip_has_no_transition_inside"),
        ({"aesthetic_score": 12.0}, "aesthetic_in_range"),
        ({"motion_score": -0.5}, "motion_in_range"),
        ({"keyframe_times": [2.52, 0.52]}, "keyframes_ordered_inside_clip"),
        ({"keyframe_times": [0.52, 9.0]}, "keyframes_ordered_inside_clip"),
        ({"caption": None}, "caption_present"),
        ({"caption": "Too short."}, "caption_word_count"),
        (
            {"caption": "I'm sorry, but I can't describe this video for you today."},
            "caption_no_boilerplate",
        ),
        (
            {"caption": "As an AI language model I see a dog running on a beach."},
            "caption_no_boilerplate",
        ),
        (
            {"caption": "The video shows a dog running along the beach at dawn."},
            "caption_no_stock_opener",
        ),
        ({"caption_repetition": 0.9}, "caption_repetition_below_max"),
        (
            {"differential_captions": [{"t": 2.0, "text": "a"}, {"t": 1.0, "text": "b"}]},
            "differential_times_increasing",
        ),
        ({"text_embedding": [0.5] * 3}, "embedding_dimension"),
        ({"text_embedding": [float("nan")] * DIM}, "embedding_finite"),
        ({"text_embedding": [1.0] * DIM}, "embedding_unit_norm"),
    ],
)
def test_each_clip_check_catches_its_defect(defect: dict, check: str) -> None:
    rows = [clip("a"), clip("b", **defect), clip("c")]
    result = gate_clips(rows, QualityConfig(), DIM, expected=3)
    assert result.passed == [rows[0], rows[2]]
    [(row, names)] = result.failed
    assert row is rows[1] and check in names
    assert result.failures[check] == 1


def test_a_caption_shared_by_many_clips_fails_them() -> None:
    same = "A grey frame with nothing happening in it at all."
    rows = [clip(str(i), caption=same) for i in range(4)] + [clip("x")]
    result = gate_clips(rows, QualityConfig(max_shared_caption=3), DIM, expected=5)
    assert [r["clip_id"] for r in result.passed] == ["x"]
    assert all("caption_not_shared_by_many" in names for _, names in result.failed)


def test_duplicate_ids_reject_the_whole_batch() -> None:
    with pytest.raises(BatchRejected, match="clip_id_unique"):
        gate_clips([clip("a"), clip("b"), clip("a")], QualityConfig(), DIM, expected=3)


def test_counts_that_do_not_reconcile_reject_the_batch() -> None:
    with pytest.raises(BatchRejected, match="reconcile"):
        gate_clips([clip("a")], QualityConfig(), DIM, expected=2)


@pytest.mark.parametrize(
    ("defect", "check"),
    [
        ({"has_video_stream": False}, "source_has_video_stream"),
        ({"decoded_frames": 1}, "source_decodable"),
        ({"duration_s": 0.1}, "source_duration_in_bounds"),
        ({"fps": 1.0}, "source_fps_in_bounds"),
        ({"width": 16}, "source_width_above_floor"),
        ({"height": 16}, "source_height_above_floor"),
    ],
)
def test_each_source_check_catches_its_defect(defect: dict, check: str) -> None:
    assert gate_sources([source()], QualityConfig()).failed == []
    [(_, names)] = gate_sources([source(**defect)], QualityConfig()).failed
    assert names == [check]


def test_data_docs_are_built_where_asked(tmp_path: Path) -> None:
    gate_clips([clip("a")], QualityConfig(), DIM, expected=1)
    url = build_data_docs(tmp_path / "docs")
    assert url == (tmp_path / "docs" / "index.html").resolve().as_uri()
    assert (tmp_path / "docs" / "index.html").exists()
    assert list((tmp_path / "docs").rglob("*.html"))


def test_model_output_is_escaped_in_data_docs(tmp_path: Path) -> None:
    """Captions are untrusted text: a hostile one shows as text, never as markup."""
    hostile = (
        "As an AI language model I cannot <script>alert('capflow')</script> "
        '<img src=x onerror="alert(1)"> describe this video.'
    )
    gate = gate_clips([clip("a"), clip("b", caption=hostile)], QualityConfig(), DIM, expected=2)
    assert [row["clip_id"] for row, _ in gate.failed] == ["b"]
    build_data_docs(tmp_path / "docs")
    pages = [p.read_text(errors="replace") for p in (tmp_path / "docs").rglob("*.html")]
    assert any("alert(&#39;capflow&#39;)" in p or "alert(&#x27;capflow&#x27;)" in p
               or "&lt;script&gt;alert" in p for p in pages)  # fmt: skip
    for page in pages:
        assert "<script>alert(" not in page
        assert '<img src=x onerror="alert(1)">' not in page


def test_data_docs_load_nothing_from_the_network_and_show_the_readme_s_check_names(
    tmp_path: Path,
) -> None:
    import re

    from quality.suites import clip_checks, source_checks

    gate_clips([clip("a")], QualityConfig(), DIM, expected=1)
    gate_sources([source()], QualityConfig())
    build_data_docs(tmp_path / "docs")
    pages = list((tmp_path / "docs").rglob("*.html"))
    assets = 0
    for page in pages:
        html = page.read_text(errors="replace")
        loads = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
        loads += re.findall(r'<link[^>]*\bhref="([^"]+\.css[^"]*)"', html)
        loads += re.findall(r"url\(['\"]?(https?://[^)'\"]+)", html)
        for url in loads:
            assert not url.startswith(("http://", "https://", "//")), (page.name, url)
            assert (page.parent / url).resolve().is_file(), (page.name, url)
            assets += 1
    assert assets > 20  # the pages do load their scripts and styles, from the site
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    shown = " ".join(p.read_text(errors="replace") for p in pages)
    for check in [*source_checks(QualityConfig()), *clip_checks(QualityConfig(), DIM)]:
        assert check.name in readme and check.name in shown, check.name


def test_data_docs_render_in_a_real_browser_with_no_network(tmp_path: Path) -> None:
    """Debian's Chromium, headless, every host unresolvable: bootstrap-table builds the
    index's tables (its wrappers only exist once its script has run)."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    gate_clips([clip("a")], QualityConfig(), DIM, expected=1)
    url = build_data_docs(tmp_path / "docs")
    assert url is not None
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "fixed-table-body" in dom and "clips" in dom
