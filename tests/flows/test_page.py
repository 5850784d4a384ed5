"""The page, in a real browser (Debian's Chromium driven by Playwright, nothing
downloaded), against a served table of the demo's videos with clip files: a text query
puts the expected clip first, a filter removes what it should, the clip view plays, a
caption holding markup renders as text, and a token, when set, is required."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from storage import schema
from storage.lance_store import LanceStore
from storage.local_s3 import free_port
from tests.helpers import curate_demo_videos

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = 'marker <script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> end'


def serve(config: Any, token: str | None = None) -> Iterator[str]:
    import uvicorn

    from flows.web import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config, token), host="127.0.0.1",
                                           port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(prefect_api: None, samples: dict, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("page")
    config = curate_demo_videos(samples, tmp)
    store = LanceStore(config.lance_uri)
    rows = [r for r in store.rows(schema.CLIPS) if r["duplicate_of"] is None]
    victim = next(r for r in rows if r["key"] == "sunset_meadow.mp4")
    store.update_rows(schema.CLIPS_TABLE, {victim["clip_id"]: {"caption": HOSTILE}})
    for url in serve(config):
        yield {"url": url, "config": config, "rows": rows, "victim": victim["clip_id"]}


@pytest.fixture(scope="module")
def page(served: Any) -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        yield page
        browser.close()


def _search(page: Any, url: str, text: str) -> list[str]:
    page.goto(url + "/")
    page.fill("#q", text)
    page.click("button[type=submit]")
    page.wait_for_function("document.querySelector('#status').textContent.includes('clip')")
    return page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.clipId)")


def test_a_text_query_puts_the_expected_clip_first(served: Any, page: Any) -> None:
    target = next(r for r in served["rows"] if r["key"] == "night_harbour.mp4")
    words = " ".join(target["caption"].split()[:12])
    assert _search(page, served["url"], words)[0] == target["clip_id"]


def test_a_filter_removes_what_it_should(served: Any, page: Any) -> None:
    ranked = sorted(served["rows"], key=lambda r: r["aesthetic_score"])
    low, cut = ranked[0], (ranked[0]["aesthetic_score"] + ranked[1]["aesthetic_score"]) / 2
    before = _search(page, served["url"], "a scene")
    assert low["clip_id"] in before
    page.click("#filters summary")
    page.fill("input[name=min_aesthetic]", f"{cut:.3f}")
    page.dispatch_event("input[name=min_aesthetic]", "change")
    gone = f"c => c.dataset.clipId === '{low['clip_id']}'"
    page.wait_for_function(
        f"!Array.from(document.querySelectorAll('.card')).some({gone})"
        " && document.querySelectorAll('.card').length > 0"
    )
    after = page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.clipId)")
    assert low["clip_id"] not in after and set(after) < set(before)


def test_the_clip_view_plays_its_clip_with_its_captions(served: Any, page: Any) -> None:
    _search(page, served["url"], "a dark blue scene with fast motion")
    page.click(".card")
    page.wait_for_selector("#view-clip:not([hidden])")
    assert page.eval_on_selector_all("#steps li", "items => items.length") >= 1
    page.evaluate("document.querySelector('#player').play()")
    page.wait_for_function("document.querySelector('#player').currentTime > 0.3", timeout=15000)


def test_a_caption_holding_markup_renders_as_text(served: Any, page: Any) -> None:
    ids = _search(page, served["url"], "marker script img onerror end")
    assert served["victim"] in ids
    shown = page.eval_on_selector(
        f".card[data-clip-id='{served['victim']}'] .caption", "c => c.textContent"
    )
    assert "<script>" in shown and "onerror" in shown  # as text
    assert page.evaluate("window.__pwned") is None
    assert page.eval_on_selector_all(".card script, .card img[src='x']", "n => n.length") == 0


def test_a_token_when_set_is_required(served: Any) -> None:
    import urllib.error
    import urllib.request

    for url in serve(served["config"], token="s3cret-token"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/api/stats", timeout=10)
        assert refused.value.code == 401
        ok = urllib.request.urlopen(url + "/api/stats?token=s3cret-token", timeout=10)
        assert ok.status == 200


def test_binding_beyond_loopback_needs_a_token() -> None:
    from flows.web import check_bind

    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(ValueError, match="--token"):
        check_bind("0.0.0.0", None)


def test_the_page_loads_nothing_from_elsewhere_and_the_api_has_its_schema(
    served: Any, page: Any
) -> None:
    import json
    import urllib.error
    import urllib.request

    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    _search(page, served["url"], "a bright scene")
    page.click(".card")
    page.wait_for_selector("#view-clip:not([hidden])")
    page.click("nav a[data-view=stats]")
    page.wait_for_selector(".plot svg")
    assert requested and all(u.startswith(served["url"]) for u in requested), requested
    schema = json.load(urllib.request.urlopen(served["url"] + "/openapi.json", timeout=10))
    assert {"/api/search", "/api/clips/{clip_id}", "/api/stats", "/api/quarantine"} <= set(
        schema["paths"]
    )
    with pytest.raises(urllib.error.HTTPError):  # FastAPI's /docs would load a CDN
        urllib.request.urlopen(served["url"] + "/docs", timeout=10)
