"""A tiny random CLIP and a random LAION-style aesthetic MLP, saved like real ones."""

from __future__ import annotations

from pathlib import Path


def build_tiny_clip(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPTextConfig,
        CLIPVisionConfig,
    )

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=CLIPTextConfig(
            vocab_size=1000,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ).to_dict(),
        vision_config=CLIPVisionConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=64,
            patch_size=16,
        ).to_dict(),
        projection_dim=32,
    )
    out.mkdir(parents=True, exist_ok=True)
    CLIPModel(config).save_pretrained(out)
    _tiny_tokenizer().save_pretrained(out)
    CLIPImageProcessorPil(
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
    ).save_pretrained(out)
    return out


def _tiny_tokenizer():
    from tests.models import train_tokenizer

    corpus = ["a dog on a beach", "a city at night", "a chef cooking", "colour bars"] * 10
    return train_tokenizer(
        corpus,
        300,
        ["<|startoftext|>", "<|endoftext|>"],
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )


def build_random_aesthetic_mlp(out: Path, input_size: int = 32, seed: int = 0) -> Path:
    """Same layer layout and state-dict keys as LAION's improved aesthetic predictor."""
    import torch

    from tasks.aesthetic import aesthetic_mlp

    torch.manual_seed(seed)
    mlp = aesthetic_mlp(input_size)
    with torch.no_grad():  # centre the random head on the LAION scale (about 1-10)
        mlp.layers[-1].bias.fill_(5.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(mlp.state_dict(), out)
    return out
