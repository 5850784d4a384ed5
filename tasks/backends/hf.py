"""`hf:<model id or path>`: any transformers image-text-to-text model.

Loaded once per process through AutoProcessor / AutoModelForImageTextToText and driven by
the model's own chat template; bf16 on CUDA, fp32 on CPU; greedy decoding, so batched
and unbatched runs agree. Requests in a batch are grouped by their number of images.
"""

from __future__ import annotations

import threading
from itertools import groupby
from typing import Any

import numpy as np

from tasks.backends.protocol import BackendOutOfMemory, GenerationRequest, ModelNotAvailable


class HFVisionLanguageModel:
    def __init__(self, source: str, max_new_tokens: int = 256, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = f"hf:{source}"
        self.max_new_tokens = max_new_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self.processor = AutoProcessor.from_pretrained(source)
            self.model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype)
        except OSError as e:
            raise ModelNotAvailable(
                f"captioning model {source!r} could not be loaded (set caption.captioner to "
                f"hf:<local path or cached model id>; downloads need HF_HUB_OFFLINE=0): {e}"
            ) from e
        self.model.to(self.device).eval()
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # generation continues on the right
        self._lock = threading.Lock()
        self.generated_tokens = 0  # for throughput figures (benchmarks, run reports)

    def _inputs(self, group: list[GenerationRequest]) -> Any:
        from PIL import Image

        texts, images = [], []
        for req in group:
            content: list[dict[str, Any]] = [{"type": "image"} for _ in req.images]
            content.append({"type": "text", "text": req.prompt})
            messages = [{"role": "user", "content": content}]
            texts.append(
                self.processor.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            )
            images += [Image.fromarray(np.asarray(img)) for img in req.images]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if images:
            kwargs["images"] = images
        return self.processor(**kwargs).to(self.device)

    def generate(self, requests: list[GenerationRequest]) -> list[str]:
        import torch

        replies: dict[int, str] = {}
        indexed = sorted(enumerate(requests), key=lambda p: len(p[1].images))
        with self._lock:
            for _, items in groupby(indexed, key=lambda p: len(p[1].images)):
                batch = list(items)
                inputs = self._inputs([r for _, r in batch])
                try:
                    with torch.inference_mode():
                        out = self.model.generate(
                            **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
                        )
                except torch.cuda.OutOfMemoryError as e:
                    torch.cuda.empty_cache()
                    raise BackendOutOfMemory(str(e)) from e
                new_tokens = out[:, inputs["input_ids"].shape[1] :]
                pad = getattr(self.processor.tokenizer, "pad_token_id", None)
                self.generated_tokens += int((new_tokens != pad).sum())
                texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
                for (i, _), text in zip(batch, texts, strict=True):
                    replies[i] = text.strip()
        return [replies[i] for i in range(len(requests))]
