"""A stand-in for a vLLM/SGLang GPU server, which cannot run here: a local HTTP server that
speaks OpenAI's chat-completions wire format, answers each request after a fixed delay,
serves a fixed number at once (the rest wait their turn, as a server's scheduler queue
does) and can be told to fail. It records when every request was in flight, so the
captioner's busy fraction and the server's slots in use can be measured from its side.

Replies are deterministic, differ per request (a word list picked by a hash of the prompt
and images) and read like captions, so they pass the quality gate.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = [
    "harbour",
    "lantern",
    "meadow",
    "ridge",
    "river",
    "cloud",
    "orange",
    "violet",
    "crimson",
    "slow",
    "quick",
    "drifting",
    "camera",
    "pans",
    "tilts",
    "zooms",
    "figure",
    "walks",
    "boat",
    "sails",
    "light",
    "fades",
    "brightens",
    "shadows",
    "stretch",
    "across",
    "water",
    "reflects",
    "trees",
    "sway",
    "wind",
    "gusts",
    "street",
    "crowd",
    "gathers",
]

Fault = Callable[[int], str]  # request number (0-based) -> "ok" | "500" | "503" | "drop" | "hang"


def healthy(_: int) -> str:
    return "ok"


def reply_text(body: dict[str, Any]) -> str:
    parts = body["messages"][0]["content"]
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    words = [WORDS[b % len(WORDS)] for b in digest[:12]]
    n_images = sum(p["type"] == "image_url" for p in parts)
    return f"A scene of {n_images} frame(s) with " + " ".join(words) + "."


def busy_fraction(intervals: list[tuple[float, float]]) -> float:
    """Time with at least one request in flight, over first arrival to last answer."""
    spans = sorted(intervals)
    if not spans:
        return 0.0
    window = max(e for _, e in spans) - spans[0][0]
    busy, cur_start, cur_end = 0.0, spans[0][0], spans[0][1]
    for s, e in spans[1:]:
        if s > cur_end:
            busy += cur_end - cur_start
            cur_start, cur_end = s, e
        else:
            cur_end = max(cur_end, e)
    busy += cur_end - cur_start
    return busy / window if window > 0 else 1.0


def slots_in_use(intervals: list[tuple[float, float]], slots: int) -> float:
    """The mean share of the server's slots working, over the same window."""
    if not intervals:
        return 0.0
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    window = events[-1][0] - events[0][0]
    area, level, last = 0.0, 0, events[0][0]
    for t, step in events:
        area += min(level, slots) * (t - last)
        level += step
        last = t
    return area / (slots * window) if window > 0 else 1.0


class StandInChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay_s: float = 0.0, slots: int = 8, fault: Fault = healthy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay_s = delay_s
        self.slots = slots
        self.fault = fault
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.received = 0
        self.answered = 0
        self.intervals: list[tuple[float, float]] = []  # (arrived, answered), answered ones
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def spec(self, model: str = "stand-in-vlm") -> str:
        return f"openai:{self.base_url}#{model}"

    def start(self) -> StandInChatServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> StandInChatServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what the client saw -------------------------------------------------------------

    def busy_fraction(self) -> float:
        return busy_fraction(self.intervals)

    def slots_in_use(self) -> float:
        return slots_in_use(self.intervals, self.slots)


class _Handler(BaseHTTPRequestHandler):
    server: StandInChatServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        """/stats: the answered requests' (arrived, answered) times; /reset clears them."""
        if self.path == "/reset":
            with self.server._lock:
                self.server.intervals.clear()
        with self.server._lock:
            self._send(200, {"intervals": list(self.server.intervals)})

    def do_POST(self) -> None:
        arrived = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": "not found"})
            return
        with self.server._lock:
            n = self.server.received
            self.server.received += 1
        action = self.server.fault(n)
        if action == "drop":  # the connection goes away mid-request
            self.close_connection = True
            return
        if action in ("500", "503"):
            self._send(int(action), {"error": {"message": "stand-in fault"}})
            return
        if action == "hang":
            time.sleep(3600)
            return
        with self.server._slots:
            time.sleep(self.server.delay_s)
        reply = {"choices": [{"message": {"role": "assistant", "content": reply_text(body)}}]}
        with self.server._lock:
            self.server.answered += 1
            self.server.intervals.append((arrived, time.monotonic()))
        self._send(200, reply)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class StandInProcess:
    """The stand-in in a process of its own, as a real server is: its request handling
    (JSON, base64 images) does not share this process's CPU time or GIL."""

    def __init__(self, delay_s: float, slots: int) -> None:
        import subprocess
        import sys

        self.slots = slots
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.chat_standin", str(delay_s), str(slots)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()

    def spec(self, model: str = "stand-in-vlm") -> str:
        return f"openai:{self.base_url}#{model}"

    def _get(self, path: str) -> list[tuple[float, float]]:
        import urllib.request

        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + path) as resp:
            return [tuple(i) for i in json.load(resp)["intervals"]]  # type: ignore[misc]

    def reset(self) -> None:
        self._get("/reset")

    def figures(self) -> tuple[float, float]:
        intervals = self._get("/stats")
        return busy_fraction(intervals), slots_in_use(intervals, self.slots)

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)


if __name__ == "__main__":
    import sys

    server = StandInChatServer(delay_s=float(sys.argv[1]), slots=int(sys.argv[2]))
    print(server.base_url, flush=True)
    server.serve_forever()
