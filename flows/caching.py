"""Cache keys and result storage for the stages a retried run should not redo.

A key names everything the result depends on, and nothing else: the object version
(bucket, key, ETag) or the decoded content, the stage configs (which carry the model
names), and PIPELINE_VERSION (bumped when code changes results). The run id is not in it,
so a second run of the same work is served from the cache. `reprocess` means "compute
again", so it turns caching off for that run.

Prefect's default cache policy is not used: it hashes every input (frames included) and
is keyed per flow run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy
from pydantic import BaseModel

from flows.config import PIPELINE_VERSION, RunConfig
from storage.types import ObjectRef, ScoredClip

# The stages inside prepare-object: their configs decide its result.
PREPARE_STAGES = ("probe", "transitions", "clips", "keyframes", "aesthetic", "quality")


def config_json(cfg: Any) -> str:
    """A canonical JSON text of a stage config (pydantic model or dataclass)."""
    data = cfg.model_dump(mode="json") if isinstance(cfg, BaseModel) else dataclasses.asdict(cfg)
    return json.dumps(data, sort_keys=True, default=str)


def prepare_key(obj: ObjectRef, config: RunConfig) -> str:
    h = hashlib.sha256()
    for part in (
        "prepare",
        PIPELINE_VERSION,
        obj.bucket,
        obj.key,
        obj.etag,
        *(config_json(getattr(config, stage)) for stage in PREPARE_STAGES),
    ):
        h.update(part.encode("utf-8") + b"\x00")
    return h.hexdigest()


def caption_key(clips: list[ScoredClip], caption_config: Any) -> str:
    """Content-addressed: the clips' spans and keyframe pixels, the captioner and its config."""
    h = hashlib.sha256()
    h.update(f"caption\x00{PIPELINE_VERSION}\x00{config_json(caption_config)}\x00".encode())
    for clip in clips:
        h.update(f"{clip.span.start_s:.3f}:{clip.span.end_s:.3f}\x00".encode())
        for kf in clip.keyframes:
            h.update(f"{kf.t:.6f}\x00".encode())
            h.update(kf.image.tobytes())
    return h.hexdigest()


def prepare_cache_key_fn(_ctx: Any, inputs: dict[str, Any]) -> str:
    return prepare_key(inputs["obj"], inputs["config"])


def caption_cache_key_fn(_ctx: Any, inputs: dict[str, Any]) -> str:
    return caption_key(inputs["clips"], inputs["cfg"])


def with_cache(task: Any, key_fn: Any, config: RunConfig) -> Any:
    """`task` with results persisted under `key_fn`'s keys, or uncached when the run says so."""
    if not config.cache.enabled or config.reprocess:
        return task.with_options(cache_policy=NO_CACHE, persist_result=False)
    storage: Any = config.cache.result_storage
    if storage is None:
        storage = Path(config.workdir).resolve() / "results"
        storage.mkdir(parents=True, exist_ok=True)
    return task.with_options(
        cache_policy=CacheKeyFnPolicy(cache_key_fn=key_fn),
        persist_result=True,
        result_storage=storage,
        result_serializer="compressed/pickle",
        cache_expiration=timedelta(days=config.cache.expiration_days),
    )
