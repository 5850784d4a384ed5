"""Cache keys and result storage for preparation, the stage a retried run should not redo.

A key names everything the result depends on, and nothing else: the object version
(bucket, key, ETag), the configs of the object-level stages and of every clip stage in
the run's stage list, in order (so a new stage is in the key without anyone listing it
here), and PIPELINE_VERSION (bumped when code changes results). The run id is not in it,
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
from prefect.serializers import CompressedPickleSerializer
from pydantic import BaseModel, Field

from flows.config import PIPELINE_VERSION, RunConfig
from storage.types import ObjectRef

# The object-level stages inside prepare-object; the clip stages come from `stages`.
OBJECT_STAGES = ("probe", "transitions", "clips", "quality", "media")  # per object, not per clip


class ZlibPickleSerializer(CompressedPickleSerializer):
    """Pickle, zlib-compressed: Prefect's `compressed/pickle` uses lzma, which costs a
    prepared object's keyframes about six times the CPU (160 ms vs 29 ms per 2 MB, +26%
    of a cached run's wall on 2 cores vs +3.5%) for half the disk. A type of its own, so
    a stored result names it and reads back with it."""

    type: str = Field(default="compressed/pickle-zlib", frozen=True)
    compressionlib: str = "zlib"


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
        *(config_json(getattr(config, stage)) for stage in OBJECT_STAGES),
        *(f"{name}={config_json(getattr(config, name))}" for name in config.stages),
    ):
        h.update(part.encode("utf-8") + b"\x00")
    return h.hexdigest()


def prepare_cache_key_fn(_ctx: Any, inputs: dict[str, Any]) -> str:
    return prepare_key(inputs["obj"], inputs["config"])


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
        result_serializer=ZlibPickleSerializer(),
        cache_expiration=timedelta(days=config.cache.expiration_days),
    )
