"""Image features for keyframe selection (and, with CLIP, the clip's visual embedding).

`clip:<model id or path>`: CLIP image embeddings through transformers (loaded once per
process, batched, on the GPU when there is one), as ShareGPT4Video's policy uses.
`thumbnail` (no model configured): a model-free feature, a 32x18 grey thumbnail with its
mean removed, L2-normalised. Rows record which one chose their keyframes.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Protocol

import numpy as np

from tasks.backends.protocol import ModelNotAvailable


class ImageFeaturizer(Protocol):
    name: str

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, d) float32, rows L2-normalised, for RGB uint8 images."""
        ...


class ThumbnailFeaturizer:
    name = "thumbnail"

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        from PIL import Image

        out = []
        for img in images:
            grey = Image.fromarray(img).convert("L").resize((32, 18), Image.Resampling.BOX)
            v = np.asarray(grey, dtype=np.float32).ravel()
            v = v - v.mean()
            norm = float(np.linalg.norm(v))
            out.append(v / norm if norm > 1e-6 else v)
        return np.stack(out) if out else np.zeros((0, 32 * 18), dtype=np.float32)


class ClipFeaturizer:
    """CLIP image tower: projected image embeddings (`get_image_features`), normalised."""

    def __init__(self, source: str, setting: str, batch_size: int = 32) -> None:
        import torch
        from transformers import AutoImageProcessor, CLIPModel

        self.name = f"clip:{source}"
        self.batch_size = batch_size
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.processor = AutoImageProcessor.from_pretrained(source)
            self.model = CLIPModel.from_pretrained(source).to(self.device).eval()
        except OSError as e:
            raise ModelNotAvailable(
                f"CLIP model {source!r} could not be loaded; set {setting} to a local path or "
                f"a cached model id: {e}"
            ) from e
        self.dim = int(self.model.config.projection_dim)
        self._lock = threading.Lock()

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        import torch
        from PIL import Image

        chunks = []
        with self._lock, torch.no_grad():
            for i in range(0, len(images), self.batch_size):
                batch = [Image.fromarray(img) for img in images[i : i + self.batch_size]]
                inputs = self.processor(images=batch, return_tensors="pt").to(self.device)
                out = self.model.get_image_features(pixel_values=inputs["pixel_values"])
                # transformers 5 returns a BaseModelOutputWithPooling; 4.x a tensor.
                feats = getattr(out, "pooler_output", out)
                feats = torch.nn.functional.normalize(feats.float(), dim=-1)
                chunks.append(feats.cpu().numpy())
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """CLIP's text tower, for searching image embeddings with words."""
        import torch
        from transformers import AutoTokenizer

        if not hasattr(self, "_tokenizer"):
            self._tokenizer = AutoTokenizer.from_pretrained(self.name.removeprefix("clip:"))
        with self._lock, torch.no_grad():
            inputs = self._tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
            out = self.model.get_text_features(
                input_ids=inputs["input_ids"].to(self.device),
                attention_mask=inputs["attention_mask"].to(self.device),
            )
            feats = torch.nn.functional.normalize(
                getattr(out, "pooler_output", out).float(), dim=-1
            )
        return feats.cpu().numpy().astype(np.float32)


_LOCK = threading.Lock()


def load_featurizer(
    clip_model: str | None, setting: str = "keyframes.clip_model"
) -> ImageFeaturizer:
    with _LOCK:
        return _load(clip_model, setting)


@lru_cache(maxsize=4)
def _load(clip_model: str | None, setting: str) -> ImageFeaturizer:
    if not clip_model:
        return ThumbnailFeaturizer()
    return ClipFeaturizer(clip_model, setting)
