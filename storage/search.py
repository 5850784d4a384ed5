"""Search the captions from Python: the function behind `capflow search`.

    from storage.lance_store import LanceStore
    from storage.search import search_captions
    from tasks.embed import load_embedder

    hits = search_captions("a dog on a beach", load_embedder("minilm"),
                           LanceStore("./capflow-demo/lance"), k=5,
                           where=filters_where(min_aesthetic=5, max_text_area=0.01))

The query must be embedded by the model that embedded the captions (rows record it in
`embedding_model`). Results carry clip id, source URI, span, score and caption. Clips
marked as near-duplicates of another are left out unless `include_duplicates`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from storage.lance_store import LanceStore, SearchHit


def filters_where(
    where: str | None = None,
    min_aesthetic: float | None = None,
    max_text_area: float | None = None,
    min_motion: float | None = None,
) -> str | None:
    """The common filters as one SQL predicate over the clips table's columns (text
    overlay and motion columns come from their stages: `text_area`, `motion_score`)."""
    clauses = [f"({where})"] if where else []
    if min_aesthetic is not None:
        clauses.append(f"aesthetic_score >= {float(min_aesthetic)!r}")
    if max_text_area is not None:
        clauses.append(f"text_area <= {float(max_text_area)!r}")
    if min_motion is not None:
        clauses.append(f"motion_score >= {float(min_motion)!r}")
    return " AND ".join(clauses) or None


class TextEmbedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


def search_captions(
    text: str,
    embedder: TextEmbedder,
    store: LanceStore,
    k: int = 10,
    where: str | None = None,
    hybrid: bool = False,
    include_duplicates: bool = False,
) -> list[SearchHit]:
    """Clips ranked by similarity of their caption to `text`; with hybrid, that ranking
    fused with full-text (BM25) ranking by reciprocal rank, so exact rare words count."""
    [vector] = embedder.embed([text])
    text_query = text if hybrid else None
    return store.search(
        vector.tolist(), k, where, text_query, include_duplicates=include_duplicates
    )


def search_keyframes(
    text: str,
    clip_text: TextEmbedder,
    store: LanceStore,
    k: int = 10,
    where: str | None = None,
    include_duplicates: bool = False,
) -> list[SearchHit]:
    """Clips ranked by how well their keyframes' CLIP image embedding matches `text`
    through CLIP's text tower (the model in `keyframes.clip_model`)."""
    [vector] = clip_text.embed([text])
    return store.search(
        vector.tolist(), k, where, column="image_embedding", include_duplicates=include_duplicates
    )
