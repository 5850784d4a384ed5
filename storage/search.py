"""Search the captions from Python: the function behind `capflow search`.

    from storage.lance_store import LanceStore
    from storage.search import search_captions
    from tasks.embed import load_embedder

    hits = search_captions("a dog on a beach", load_embedder("minilm"),
                           LanceStore("./capflow-demo/lance"), k=5, where="aesthetic_score > 5")

The query must be embedded by the model that embedded the captions (rows record it in
`embedding_model`). Results carry clip id, source URI, span, score and caption.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from storage.lance_store import LanceStore, SearchHit


class TextEmbedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


def search_captions(
    text: str,
    embedder: TextEmbedder,
    store: LanceStore,
    k: int = 10,
    where: str | None = None,
    hybrid: bool = False,
) -> list[SearchHit]:
    """Clips ranked by similarity of their caption to `text`; with hybrid, that ranking
    fused with full-text (BM25) ranking by reciprocal rank, so exact rare words count."""
    [vector] = embedder.embed([text])
    return store.search(vector.tolist(), k=k, where=where, text=text if hybrid else None)


def search_keyframes(
    text: str, clip_text: TextEmbedder, store: LanceStore, k: int = 10, where: str | None = None
) -> list[SearchHit]:
    """Clips ranked by how well their keyframes' CLIP image embedding matches `text`
    through CLIP's text tower (the model in `keyframes.clip_model`)."""
    [vector] = clip_text.embed([text])
    return store.search(vector.tolist(), k=k, where=where, column="image_embedding")
