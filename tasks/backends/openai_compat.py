"""`openai:<base_url>#<model>`: any OpenAI-compatible chat-completions server.

vLLM, SGLang, or a hosted API. Images travel as JPEG data URLs; requests run with bounded
concurrency, a timeout each, and retries with exponential backoff and jitter on 429, 5xx
and dropped connections (honouring Retry-After, capped at 30 s). The API key, if any,
comes from OPENAI_API_KEY and is never logged. `concurrency` tells the captioner how many
requests the server should have in flight: it keeps that many DiffSW chains going.
"""

from __future__ import annotations

import base64
import io
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np

from tasks.backends.protocol import GenerationRequest

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class ChatCompletionsError(RuntimeError):
    pass


def data_url(image: np.ndarray, quality: int = 90) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class OpenAICompatModel:
    def __init__(
        self,
        base_url: str,
        model: str,
        max_new_tokens: int = 256,
        max_concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
    ) -> None:
        self.name = f"openai:{model}"
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.max_concurrency = max_concurrency
        self.concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        headers = {"Content-Type": "application/json"}
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def payload(self, req: GenerationRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": data_url(img)}} for img in req.images
        ]
        content.append({"type": "text", "text": req.prompt})
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": self.max_new_tokens,
            "temperature": 0,
        }

    def _backoff(self, attempt: int, retry_after: float = 0.0) -> None:
        delay = self.backoff_s * 2**attempt * (0.5 + random.random())  # noqa: S311
        time.sleep(min(30.0, max(retry_after, delay)))

    def _one(self, req: GenerationRequest) -> str:
        body = self.payload(req)
        for attempt in range(self.max_retries + 1):
            try:
                resp = self._client.post(self.url, json=body)
            except httpx.TransportError as e:
                if attempt == self.max_retries:
                    raise ChatCompletionsError(
                        f"{self.url}: {type(e).__name__} after {attempt + 1} attempt(s)"
                    ) from e
                self._backoff(attempt)
                continue
            if resp.status_code == 200:
                try:
                    return str(resp.json()["choices"][0]["message"]["content"] or "").strip()
                except (ValueError, KeyError, IndexError, TypeError) as e:
                    raise ChatCompletionsError(f"{self.url} answered 200 without a reply") from e
            if resp.status_code not in RETRY_STATUS or attempt == self.max_retries:
                raise ChatCompletionsError(
                    f"{self.url} answered {resp.status_code} after {attempt + 1} attempt(s)"
                )
            retry_after = resp.headers.get("Retry-After", "")
            delay = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 0.0
            self._backoff(attempt, delay)
        raise ChatCompletionsError("unreachable")

    def generate(self, requests: list[GenerationRequest]) -> list[str]:
        if len(requests) == 1:
            return [self._one(requests[0])]
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(self._one, requests))
