"""DiffSW on a tiny random LLaVA loaded through `hf:<path>`, plus the OpenAI wire format."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from storage.records import ClipRecord
from storage.types import Caption, ClipSpan, Keyframe, Rejection, RejectReason
from tasks.backends.protocol import BackendOutOfMemory, GenerationRequest
from tasks.caption import CaptionConfig, caption_clips, load_captioner, load_model
from tasks.caption_text import clean_caption, repetition_ratio
from tasks.diffsw import DiffSWCaptioner, DiffSWOptions
from tests.models import build_tiny_llava


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "hf:" + str(build_tiny_llava(tmp_path_factory.mktemp("tiny-llava")))


def frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def clip(index: int, times: list[float]) -> ClipRecord:
    kfs = [Keyframe(t, frame(index * 100 + i)) for i, t in enumerate(times)]
    return ClipRecord(ClipSpan(index, times[0], times[-1] + 1.0), keyframes=kfs)


class Recorder:
    """Wraps a model and records every batch of requests it is asked for."""

    def __init__(self, model) -> None:
        self.model = model
        self.name = model.name
        self.batches: list[list[GenerationRequest]] = []

    def generate(self, requests: list[GenerationRequest]) -> list[str]:
        self.batches.append(list(requests))
        return self.model.generate(requests)


def diffsw(model, **options) -> DiffSWCaptioner:
    return DiffSWCaptioner(model, DiffSWOptions(**options))


def make_clips() -> list[ClipRecord]:
    """Fresh records each time: captioning fills them in place."""
    return [clip(0, [0.52, 2.52, 4.52]), clip(1, [10.04, 13.4]), clip(2, [20.0, 21.1, 23.7, 25.0])]


def test_diffsw_end_to_end_through_hf_path(tiny_llava: str) -> None:
    captioner = load_captioner(CaptionConfig(captioner=tiny_llava, max_new_tokens=8))
    results = caption_clips(make_clips(), captioner)
    for c, cap in zip(make_clips(), results, strict=True):
        assert isinstance(cap, Caption)
        assert [d.t for d in cap.differential] == [k.t for k in c.keyframes]
        assert (cap.model, cap.mode, cap.prompt_version) == (tiny_llava, "diffsw", "diffsw-v1")
        assert cap.seconds > 0


def test_prompts_carry_true_timestamps_and_the_previous_caption(tiny_llava: str) -> None:
    model = Recorder(load_model(CaptionConfig(captioner=tiny_llava, max_new_tokens=8)))
    [cap] = diffsw(model, pool_size=1).caption([make_clips()[1]])
    first, diff, summary = (batch[0] for batch in model.batches)
    assert "10.04 seconds" in first.prompt and len(first.images) == 1
    assert "10.04 seconds" in diff.prompt and "13.40 seconds" in diff.prompt
    assert len(diff.images) == 2  # both frames, not just the current one
    assert clean_caption(cap.differential[0].text) in diff.prompt  # step 0's caption as context
    assert "At 10.04 s:" in summary.prompt and "At 13.40 s:" in summary.prompt
    assert "Write one detailed caption" in summary.prompt and not summary.images


def test_stacked_pairs_send_one_image(tiny_llava: str) -> None:
    model = Recorder(load_model(CaptionConfig(captioner=tiny_llava, max_new_tokens=4)))
    diffsw(model, pool_size=1, stack_pairs=True).caption([make_clips()[1]])
    diff = model.batches[1][0]
    assert len(diff.images) == 1 and diff.images[0].shape[0] == 48 * 2 + 50
    assert "on top" in diff.prompt


def test_model_calls_are_keyframes_plus_one_in_diffsw_and_one_in_fast(tiny_llava: str) -> None:
    model = Recorder(load_model(CaptionConfig(captioner=tiny_llava, max_new_tokens=4)))
    diffsw(model, pool_size=8).caption(make_clips())
    assert sum(len(b) for b in model.batches) == sum(len(c.keyframes) + 1 for c in make_clips())
    fast = Recorder(model.model)
    results = diffsw(fast, mode="fast").caption(make_clips())
    assert sum(len(b) for b in fast.batches) == len(make_clips())
    assert all(isinstance(r, Caption) and r.mode == "fast" and not r.differential for r in results)
    assert all(len(r.images) == 1 for r in fast.batches[0])


def test_batches_group_steps_of_different_clips(tiny_llava: str) -> None:
    model = Recorder(load_model(CaptionConfig(captioner=tiny_llava, max_new_tokens=4)))
    diffsw(model, pool_size=3).caption(make_clips())
    # Wavefront: one step of every clip per call, so 3 clips of 2-4 keyframes take 5 calls.
    assert [len(b) for b in model.batches] == [3, 3, 3, 2, 1]
    stamps = ["0.52 seconds", "10.04 seconds", "20.00 seconds"]
    assert all(s in r.prompt for s, r in zip(stamps, model.batches[0], strict=True))


def test_batched_results_equal_unbatched_under_greedy_decoding(tiny_llava: str) -> None:
    model = load_model(CaptionConfig(captioner=tiny_llava, max_new_tokens=12))
    one = diffsw(model, pool_size=1).caption(make_clips())
    many = diffsw(model, pool_size=8).caption(make_clips())
    assert [c.text for c in one] == [c.text for c in many]
    assert [[d.text for d in c.differential] for c in one] == [
        [d.text for d in c.differential] for c in many
    ]


class FlakyMemory:
    """A backend that runs out of memory above `limit` requests per call."""

    name = "oom-test"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sizes: list[int] = []

    def generate(self, requests: list[GenerationRequest]) -> list[str]:
        self.sizes.append(len(requests))
        if len(requests) > self.limit:
            raise BackendOutOfMemory("CUDA out of memory (simulated)")
        return [f"caption of {len(r.images)} image(s)" for r in requests]


def test_out_of_memory_halves_the_batch_then_quarantines() -> None:
    model = FlakyMemory(limit=1)
    results = diffsw(model, pool_size=4).caption(make_clips())
    assert all(isinstance(r, Caption) for r in results)
    assert max(s for s in model.sizes if s <= 1) == 1 and 3 in model.sizes
    broken = diffsw(FlakyMemory(limit=0), pool_size=4).caption(make_clips())
    assert all(isinstance(r, Rejection) and r.reason == RejectReason.CAPTION_FAILED for r in broken)


def test_stock_openers_are_stripped_and_loops_measured() -> None:
    assert clean_caption("The video shows a dog running.") == "A dog running."
    assert clean_caption("In this clip, a chef cooks.") == "A chef cooks."
    assert clean_caption("A dog runs.") == "A dog runs."
    assert repetition_ratio("a dog runs on the beach at dawn") == 0.0
    assert repetition_ratio("the cat sat " * 30) > 0.9


# -- the OpenAI-compatible backend, against a local server speaking the wire format -------


class ChatServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[dict] = []
        self.headers_seen: list[dict] = []
        self.fail_first = 1  # answer 429 this many times first


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        self.server.requests.append(body)
        self.server.headers_seen.append(dict(self.headers))
        parts = body["messages"][0]["content"]
        n_images = sum(p["type"] == "image_url" for p in parts)
        reply = {
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": f"The video shows {n_images} frame(s).",
                    }
                }
            ]
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def chat_server():
    server = ChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_openai_backend_speaks_chat_completions(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    from tasks.backends.openai_compat import OpenAICompatModel

    base = f"http://127.0.0.1:{chat_server.server_address[1]}/v1"
    model = OpenAICompatModel(base, "vlm-7b", max_new_tokens=64, backoff_s=0.01)
    results = diffsw(model, pool_size=4).caption(make_clips()[:2])
    assert all(isinstance(r, Caption) for r in results)
    assert results[0].differential[1].text == "2 frame(s)."  # stock opener stripped
    assert len(chat_server.requests) == sum(len(c.keyframes) + 1 for c in make_clips()[:2])
    req = chat_server.requests[0]
    assert req["model"] == "vlm-7b" and req["max_tokens"] == 64 and req["temperature"] == 0
    images = [
        p
        for r in chat_server.requests
        for p in r["messages"][0]["content"]
        if p["type"] == "image_url"
    ]
    assert images and all(
        p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in images
    )
    assert chat_server.headers_seen[0]["Authorization"] == "Bearer sk-test-secret"


def test_openai_backend_gives_up_with_a_clear_error(chat_server: ChatServer) -> None:
    from tasks.backends.openai_compat import ChatCompletionsError, OpenAICompatModel

    chat_server.fail_first = 100
    base = f"http://127.0.0.1:{chat_server.server_address[1]}/v1"
    model = OpenAICompatModel(base, "m", max_retries=2, backoff_s=0.01)
    with pytest.raises(ChatCompletionsError, match="429"):
        model.generate([GenerationRequest("hi")])


def test_unknown_captioner_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"caption\.captioner"):
        load_captioner(CaptionConfig(captioner="gpt-magic"))


def test_missing_hf_model_names_the_setting(tmp_path: Path) -> None:
    from tasks.backends.hf import ModelNotAvailable

    with pytest.raises(ModelNotAvailable, match=r"caption\.captioner"):
        load_model(CaptionConfig(captioner=f"hf:{tmp_path / 'nothing-here'}"))
