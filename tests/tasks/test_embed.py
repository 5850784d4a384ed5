from __future__ import annotations

import numpy as np
import pytest

from tasks.embed import EmbedConfig, MissingModelError, embed_texts, load_embedder


def test_minilm_embeds_offline_normalised_and_meaningful() -> None:
    vecs = embed_texts(
        ["a dog runs on the beach", "a puppy playing by the sea", "a stock market report"],
        EmbedConfig(),
    )
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3


def test_model_loads_once_per_process() -> None:
    assert load_embedder("minilm") is load_embedder("minilm")


def test_a_missing_model_names_the_setting(tmp_path) -> None:
    with pytest.raises(MissingModelError, match=r"embed\.model"):
        load_embedder("no-such-org/no-such-model-xyz")
