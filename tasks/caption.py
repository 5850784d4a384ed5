"""Caption clips with Differential Sliding-Window captioning (ShareGPT4Video).

`caption.captioner` picks the backend, loaded once per process:
- `describe` (offline default): the model-free describer, labelled as such in every row;
- `hf:<model id or path>`: a transformers image-text-to-text model (tasks/backends/hf.py);
- `openai:<base_url>#<model>`: an OpenAI-compatible server (tasks/backends/openai_compat.py).
Model backends run through DiffSWCaptioner (tasks/diffsw.py), which batches across clips.
Every captioner streams: it takes clips from a `ClipFeed` as they become ready and fills
each record in place (tasks/feed.py); `caption_clips` runs one over a plain list.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from storage.records import ClipRecord
from storage.types import Caption, DiffCaption, Rejection
from tasks import prompts
from tasks.backends.protocol import GenerationRequest, VisionLanguageModel
from tasks.caption_text import clean_caption
from tasks.feed import ClipFeed, Done, caption_list

STAGE = "caption"
MODES = ("diffsw", "fast")


class Captioner(Protocol):
    name: str
    prompt_version: str
    mode: str

    def stream(self, feed: ClipFeed, done: Done) -> None:
        """Caption the feed's clips until it closes, each handed to `done` when finished."""
        ...

    def caption(self, clips: list[ClipRecord]) -> list[Caption | Rejection]:
        """One result per clip, in order (the same code path as `stream`)."""
        ...


@dataclass(frozen=True)
class CaptionConfig:
    captioner: str = "describe"
    mode: str = "diffsw"
    pool_size: int = 8  # clips advanced together, one step each per model call
    max_new_tokens: int = 256
    summary_words: int = 300
    stack_pairs: bool = False
    max_concurrency: int = 4  # openai: requests in flight (set it to the server's capacity)
    timeout_s: float = 120.0  # openai: per request
    retries: int = 4  # openai: per request, on 5xx, 429 and dropped connections
    backoff_s: float = 1.0  # openai: first retry's delay; doubles, with jitter, up to 30 s

    def __post_init__(self) -> None:
        """Specs that cannot work fail when the config is built, not after a decode."""
        if self.mode not in MODES:
            raise ValueError(f"caption.mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        kind, _, rest = self.captioner.partition(":")
        if self.captioner == "describe" or (kind == "hf" and rest):
            return
        if kind == "openai" and rest and "#" not in rest:
            raise ValueError(
                f"caption.captioner {self.captioner!r} names no model: add '#<model>', "
                f"e.g. openai:{rest}#Qwen/Qwen2-VL-7B-Instruct"
            )
        if kind == "openai" and rest.rpartition("#")[0] and rest.rpartition("#")[2]:
            return
        raise ValueError(
            f"unknown captioner {self.captioner!r}: caption.captioner is 'describe' (offline "
            "default), 'hf:<model id or path>' or 'openai:<base_url>#<model>'"
        )


class CaptionerError(ValueError):
    pass


_LOAD_LOCK = threading.Lock()


def load_model(cfg: CaptionConfig) -> VisionLanguageModel:
    """The model behind an `hf:` or `openai:` spec, loaded once per process."""
    with _LOAD_LOCK:
        return _load_model(
            cfg.captioner,
            cfg.max_new_tokens,
            cfg.max_concurrency,
            cfg.timeout_s,
            cfg.retries,
            cfg.backoff_s,
        )


@lru_cache(maxsize=4)
def _load_model(
    spec: str,
    max_new_tokens: int,
    concurrency: int,
    timeout_s: float,
    retries: int,
    backoff_s: float,
) -> VisionLanguageModel:
    kind, _, rest = spec.partition(":")
    if kind == "hf" and rest:
        from pathlib import Path

        from tasks.backends.hf import HFVisionLanguageModel
        from tasks.backends.protocol import ModelNotAvailable

        if rest.startswith(("/", "./", "../", "~")) and not Path(rest).expanduser().is_dir():
            raise ModelNotAvailable(
                f"caption.captioner {spec!r}: no model folder at {rest}; pass the folder of "
                "a saved model (config.json, weights) or a model id in the local HF cache"
            )
        try:
            return HFVisionLanguageModel(rest, max_new_tokens=max_new_tokens)
        except OSError as e:  # transformers' word for "not there" (and "not offline")
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelNotAvailable(
                f"caption.captioner {spec!r}: cannot load the model ({first[:200]}); with "
                "HF_HUB_OFFLINE=1 a model id must already be in the HF cache, or pass a folder"
            ) from e
    if kind == "openai" and "#" in rest:
        from tasks.backends.openai_compat import OpenAICompatModel

        base_url, _, model = rest.rpartition("#")
        return OpenAICompatModel(
            base_url, model, max_new_tokens, concurrency, timeout_s, retries, backoff_s
        )
    raise CaptionerError(
        f"unknown captioner {spec!r}: set caption.captioner to 'describe' (offline default), "
        "'hf:<model id or path>' or 'openai:<base_url>#<model>'"
    )


def load_captioner(cfg: CaptionConfig) -> Captioner:
    if cfg.mode not in MODES:
        raise CaptionerError(f"caption.mode must be one of {MODES}, not {cfg.mode!r}")
    if cfg.captioner == "describe":
        from tasks.backends.describe import Describer

        return Describer(cfg.mode)
    from tasks.diffsw import DiffSWCaptioner, DiffSWOptions

    options = DiffSWOptions(cfg.mode, cfg.pool_size, cfg.stack_pairs, cfg.summary_words)
    return DiffSWCaptioner(load_model(cfg), options)


def caption_clips(clips: list[ClipRecord], captioner: Captioner) -> list[Caption | Rejection]:
    """Captions for a list of clips, in order; raises CaptionerUnavailable on a fault."""
    if not clips:
        return []
    return caption_list(captioner, clips)


def resummarize(
    steps: list[DiffCaption], start_s: float, end_s: float, cfg: CaptionConfig
) -> Caption:
    """Clip summary mode: a new caption for [start_s, end_s] from stored differential
    captions, with no frame decoded."""
    chosen = [s for s in steps if start_s <= s.t <= end_s]
    if not chosen:
        raise CaptionerError(f"no differential caption between {start_s} s and {end_s} s")
    if cfg.captioner == "describe":
        from tasks.backends.describe import NAME, PROMPT_VERSION, summarize_steps

        return Caption(summarize_steps(chosen), chosen, NAME, "summary", PROMPT_VERSION)
    model = load_model(cfg)
    [reply] = model.generate([GenerationRequest(prompts.summary_prompt(chosen, cfg.summary_words))])
    return Caption(clean_caption(reply), chosen, model.name, "summary", prompts.PROMPT_VERSION)


def recaption(prompt: str, cfg: CaptionConfig) -> Caption:
    """Prompt re-captioning: expand a short prompt into a detailed caption (text only)."""
    if cfg.captioner == "describe":
        raise CaptionerError(
            "prompt re-captioning needs a language model: set caption.captioner "
            "(--captioner) to 'hf:<model>' or 'openai:<base_url>#<model>'"
        )
    model = load_model(cfg)
    [reply] = model.generate(
        [GenerationRequest(prompts.recaption_prompt(prompt, cfg.summary_words))]
    )
    return Caption(clean_caption(reply), [], model.name, "recaption", prompts.PROMPT_VERSION)
