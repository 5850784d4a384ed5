"""The one run config: defaults < YAML file < CAPFLOW_* environment < CLI flags.

Built once at the entrypoint and passed down; tasks get only their own slice. It holds
no secrets: S3 credentials come from the standard AWS chain (environment, profile, role),
because a flow's parameters are stored by the Prefect API and shown in its UI.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from quality.config import QualityConfig
from storage.s3 import S3Options
from tasks.aesthetic import AestheticConfig
from tasks.caption import CaptionConfig
from tasks.clip_files import MediaConfig
from tasks.clips import ClipConfig
from tasks.duplicates import DuplicatesConfig
from tasks.embed import EmbedConfig
from tasks.keyframes import KeyframeConfig
from tasks.motion import MotionConfig
from tasks.probe import ProbeConfig
from tasks.text_overlay import TextOverlayConfig
from tasks.transitions import TransitionConfig

log = logging.getLogger("capflow.config")

PIPELINE_VERSION = "capflow-0.3.0"
ENV_PREFIX = "CAPFLOW_"
COMMAND_VARIABLES = ("CAPFLOW_SERVE_TOKEN",)  # read by a command, not run settings


class SourceConfig(BaseModel):
    """Which objects a run takes: prefixes, a LastModified range, and one partition of them.

    A partition is a stable hash of the key modulo `partitions`, so a backfill's child runs
    split the objects without overlap and a re-run gives every key the same child.
    """

    model_config = ConfigDict(extra="forbid")
    bucket: str = ""
    prefix: str = ""
    prefixes: list[str] = Field(default_factory=list)  # when set, these instead of `prefix`
    since: datetime | None = None
    until: datetime | None = None
    partition: int = Field(default=0, ge=0)
    partitions: int = Field(default=1, ge=1)
    # Objects the ledger knows under these prefixes that are gone from the bucket lose
    # their clips (Lance keeps old table versions: nothing is beyond recovery).
    prune_missing: bool = True
    # A local folder's files (bucket: an absolute path): a version is size + mtime, or
    # with "content" a hash of the bytes (storage/local.py).
    identity: Literal["stat", "content"] = "stat"
    # A CSV or JSONL of s3:// and file:// URIs to take instead of bucket and prefixes
    # (storage/manifest.py); nothing is pruned by leaving an entry out.
    manifest: str = ""

    @field_validator("bucket")
    @classmethod
    def _folder_as_bucket(cls, bucket: str) -> str:
        """A folder (./videos, ~/clips, file:///data) is a bucket named by its absolute
        path; any other name is an S3 bucket."""
        if bucket.startswith(("./", "../", "~", "file://", "/")) or bucket in (".", ".."):
            from storage.local import folder_of

            return folder_of(bucket)
        return bucket

    def all_prefixes(self) -> list[str]:
        return list(dict.fromkeys(self.prefixes)) if self.prefixes else [self.prefix]


class S3Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: str = "path"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_attempts: int = 5

    def options(self) -> S3Options:
        return S3Options(**self.model_dump())

    def lance_storage_options(self) -> dict[str, str]:
        """object_store options for LanceDB on s3:// (credentials from the environment)."""
        opts = {"region": self.region}
        if self.endpoint_url:
            opts["endpoint"] = self.endpoint_url
            opts["virtual_hosted_style_request"] = "false"
            if self.endpoint_url.startswith("http://"):
                opts["allow_http"] = "true"
        return opts


class RunnerConfig(BaseModel):
    """Where the flow's tasks run: chosen by config, no code change.

    `threads` is Prefect's thread pool (`max_workers` threads). `dask` is prefect-dask: a
    LocalCluster of `max_workers` processes, or the scheduler at `address`. `ray` is
    prefect-ray: a local Ray, or the cluster at `address` (`ray://host:10001`). Process-based
    runners need a Prefect server (`PREFECT_API_URL`): in ephemeral mode every worker
    process would start its own temporary API.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["threads", "dask", "ray"] = "threads"
    address: str | None = None


class LimitsConfig(BaseModel):
    """Tag concurrency limits, shared by every run on one Prefect API; created when missing,
    never changed (an operator's setting wins). All are opt-in (None: no tag).

    A Prefect slot costs ~1 s of API round trips per task on a 2-core box, and a waiting
    task sleeps for the server's Retry-After, which grows with the slots' past occupancy
    (minutes, after a holder was killed): so within a run captioning is one stream with
    one model (flows/streaming.py) and the task runner's size is the CPU limit. Set these
    to share GPUs, CPUs or the store between runs on a cluster: `gpu` = runs captioning at
    once (one model per accelerator), `cpu` = prepare-object tasks, `s3` = land-batch
    tasks.
    """

    model_config = ConfigDict(extra="forbid")
    gpu: int | None = None
    cpu: int | None = None
    s3: int | None = None

    def as_tags(self) -> dict[str, int]:
        tags = {"gpu": self.gpu, "cpu": self.cpu, "s3": self.s3}
        return {tag: limit for tag, limit in tags.items() if limit is not None}


class CacheConfig(BaseModel):
    """Task result caching: a retried run takes finished stages from the cache.

    Keys are (object ETag, the stage configs, models, PIPELINE_VERSION). `result_storage`
    None is a local folder, WORKDIR/results; in production name a Prefect storage block
    (e.g. `s3-bucket/capflow-results`) so every worker shares it.
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    result_storage: str | None = None
    expiration_days: float = 7.0  # not reused after this; files stay until someone clears them


DEFAULT_STAGES = ("keyframes", "motion", "aesthetic", "text_overlay", "duplicates")


class StreamConfig(BaseModel):
    """How far preparation may run ahead of captioning: the buffer between them is
    bounded in clips and in bytes of keyframes, so memory stays flat on a bucket of any
    size. `land_after_s` lands finished objects that have waited this long even when fewer
    than `chunk_objects` are ready, so a slow run keeps committing its progress."""

    model_config = ConfigDict(extra="forbid")
    max_clips: int = Field(default=64, ge=1)
    max_keyframe_mb: float = Field(default=512.0, gt=0)
    land_after_s: float = Field(default=10.0, ge=0)
    max_consecutive_caption_failures: int = Field(default=16, ge=1)


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: SourceConfig = SourceConfig()
    s3: S3Config = S3Config()
    lance_uri: str = "./capflow-lance"
    workdir: Path = Path("./capflow-work")
    reprocess: bool = False
    max_workers: int = 2  # threads, or local Dask workers / Ray CPUs
    chunk_objects: int = 16  # finished objects landed together (one commit per table)
    stages: list[str] = Field(default_factory=lambda: list(DEFAULT_STAGES))  # per clip, in order
    stream: StreamConfig = StreamConfig()
    runner: RunnerConfig = RunnerConfig()
    limits: LimitsConfig = LimitsConfig()
    cache: CacheConfig = CacheConfig()
    vector_index_min_rows: int = 20_000  # build the ANN index once the table is this big
    probe: ProbeConfig = ProbeConfig()
    transitions: TransitionConfig = TransitionConfig()
    clips: ClipConfig = ClipConfig()
    keyframes: KeyframeConfig = KeyframeConfig()
    motion: MotionConfig = MotionConfig()
    aesthetic: AestheticConfig = AestheticConfig()
    text_overlay: TextOverlayConfig = TextOverlayConfig()
    duplicates: DuplicatesConfig = DuplicatesConfig()
    media: MediaConfig = MediaConfig()  # clip files, thumbnails, previews (off until uri)
    caption: CaptionConfig = CaptionConfig()
    embed: EmbedConfig = EmbedConfig()
    quality: QualityConfig = QualityConfig()

    def lance_storage_options(self) -> dict[str, str] | None:
        return self.s3.lance_storage_options() if self.lance_uri.startswith("s3://") else None

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, names: list[str]) -> list[str]:
        sections = {
            name
            for name, info in cls.model_fields.items()
            if callable(getattr(info.annotation, "build", None))
        }
        unknown = [n for n in names if n not in sections]
        if unknown:
            raise ValueError(
                f"unknown stage(s) {', '.join(unknown)}: stages are config sections that "
                f"build a clip stage ({', '.join(sorted(sections))})"
            )
        if len(set(names)) != len(names):
            raise ValueError("a stage appears twice in `stages`")
        return names

    def clip_stages(self) -> list[Any]:
        """The per-clip stages, in the order `stages` names them, built from their
        sections; checked so every stage's inputs come from an earlier one."""
        from tasks.stages import check_order

        built = [getattr(self, name).build() for name in self.stages]
        check_order(built, final_needs=("keyframes",))
        return built


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """CAPFLOW_SECTION__FIELD=value -> {"section": {"field": "value"}}. A CAPFLOW_*
    variable that names no setting (CAPFLOW_DEBUG, or another tool's) is left out with a
    warning: it must not break every command."""
    tree: dict[str, Any] = {}
    for name, value in sorted(environ.items()):
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            path = name[len(ENV_PREFIX) :].lower().split("__")
            if setting_exists(path):
                _set_path(tree, path, value)
            elif name not in COMMAND_VARIABLES:
                log.warning("ignoring %s: it is not a capflow setting%s", name, _hint(path))
    return tree


class ConfigError(ValueError):
    """A run config that does not validate, said in one line: which setting, set where."""


def _fields(model: Any) -> dict[str, Any]:
    """The settings one level down: a pydantic model's fields or a dataclass's."""
    import dataclasses

    if isinstance(model, type) and issubclass(model, BaseModel):
        return {name: info.annotation for name, info in model.model_fields.items()}
    if dataclasses.is_dataclass(model):
        import typing

        hints = typing.get_type_hints(model)
        return {f.name: hints.get(f.name) for f in dataclasses.fields(model)}
    return {}


def _section(annotation: Any) -> Any:
    """The model or dataclass a field holds (through `X | None`), or None."""
    import dataclasses
    import typing

    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and (
            issubclass(candidate, BaseModel) or dataclasses.is_dataclass(candidate)
        ):
            return candidate
    return None


def _first_unknown(path: list[str]) -> tuple[int, list[str]] | None:
    """Where `path` leaves the run config's settings: (its index, the names there), or
    None when it names a setting."""
    model: Any = RunConfig
    for i, part in enumerate(path):
        fields = _fields(model)
        if part not in fields:
            return i, list(fields)
        model = _section(fields[part])
        if model is None:  # a leaf: nothing may follow it
            return None if i == len(path) - 1 else (i + 1, [])
    return None


def setting_exists(path: list[str]) -> bool:
    return _first_unknown(path) is None


def _hint(path: list[str]) -> str:
    """' (did you mean source.prefix?)' for the closest setting at the first wrong step."""
    import difflib

    wrong = _first_unknown(path)
    if wrong is None or not wrong[1]:
        return ""
    i, names = wrong
    close = difflib.get_close_matches(path[i], names, n=1, cutoff=0.6)
    return f" (did you mean {'.'.join([*path[:i], close[0]])}?)" if close else ""


def _has_path(tree: Mapping[str, Any], path: tuple[Any, ...]) -> bool:
    node: Any = tree
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def build_config(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunConfig:
    """Merge the layers in order of precedence and validate once. A setting that does not
    validate is a ConfigError naming it, the layer that set it, and the closest name."""
    from pydantic import ValidationError

    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file is not None:
        try:
            loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"--config {config_file}: cannot read it as YAML ({first})") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {config_file}: expected a mapping at the top level")
        layers.append((f"in {config_file}", loaded))
    env = env_overrides(os.environ if environ is None else environ)
    layers.append(("by the environment (CAPFLOW_*)", env))
    layers.append(("by a command-line option", dict(overrides or {})))
    data: dict[str, Any] = {}
    for _, layer in layers:
        data = deep_merge(data, layer)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        error = e.errors()[0]
        loc = tuple(str(p) for p in error["loc"] if not isinstance(p, int))
        name = ".".join(loc)
        where = next((w for w, layer in reversed(layers) if _has_path(layer, loc)), "")
        if error["type"] == "extra_forbidden":
            message = f"unknown setting {name}{_hint(list(loc))}"
        elif error["type"] == "value_error":  # our own validators name the setting
            message = str(error["msg"]).removeprefix("Value error, ")
        else:
            message = f"setting {name}: {error['msg']}"
        raise ConfigError(f"{message}{' (set ' + where + ')' if where else ''}") from e
