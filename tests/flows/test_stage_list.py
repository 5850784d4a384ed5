"""A new clip stage is one module, one reason and one config entry: the stage list, the
cache key, the table's columns, the quarantine, the report's funnel and the single-video
commands all follow it. Here a test-local stage (a minimum-brightness filter) is added to
a RunConfig subclass and run through preparation and landing on the real S3 and LanceDB."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from flows.config import RunConfig, build_config
from storage.records import ClipRecord
from storage.types import Rejection, RejectReason


class BrightnessStage:
    name = "brightness"
    columns = (pa.field("brightness", pa.float32()),)
    needs = ("keyframes",)
    provides = ()

    def __init__(self, config: BrightnessConfig) -> None:
        self.config = config

    def __call__(self, clip: ClipRecord) -> ClipRecord | Rejection:
        value = float(np.mean([k.image.mean() for k in clip.keyframes]) / 255)
        clip.scores["brightness"] = round(value, 4)
        if value < self.config.minimum:
            span = (clip.span.start_s, clip.span.end_s)
            detail = f"brightness {value:.2f} < {self.config.minimum}"
            return Rejection(self.name, RejectReason.OUT_OF_BOUNDS, detail, span, value)
        return clip


@dataclass(frozen=True)
class BrightnessConfig:
    minimum: float = 0.2

    def build(self) -> BrightnessStage:
        return BrightnessStage(self)


class WithBrightness(RunConfig):
    brightness: BrightnessConfig = BrightnessConfig()


def config(tmp: Path, endpoint: str, bucket: str, **extra: Any) -> WithBrightness:
    base = build_config(environ={}).model_dump()
    base.update(
        source={"bucket": bucket},
        s3={"endpoint_url": endpoint},
        lance_uri=str(tmp / "lance"),
        workdir=str(tmp / "work"),
        stages=["keyframes", "aesthetic", "brightness"],
        **extra,
    )
    return WithBrightness.model_validate(base)


def test_a_stage_name_that_is_no_section_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        build_config(overrides={"stages": ["keyframes", "brightnes"]}, environ={})
    with pytest.raises(ValueError, match="put that stage before"):
        build_config(overrides={"stages": ["aesthetic", "keyframes"]}, environ={}).clip_stages()


def test_the_cache_key_follows_the_stage_list() -> None:
    from datetime import UTC, datetime

    from flows.caching import prepare_key
    from storage.types import ObjectRef

    obj = ObjectRef("b", "k.mp4", "e", 1, datetime(2026, 1, 1, tzinfo=UTC))
    tmp = Path("/unused")
    one = prepare_key(obj, config(tmp, "http://x", "b"))
    assert one != prepare_key(obj, config(tmp, "http://x", "b", brightness={"minimum": 0.3}))
    plain = build_config(environ={})
    assert one != prepare_key(obj, plain)  # the stage is in the key by being in the list


@pytest.mark.slow
def test_a_new_stage_runs_records_its_column_and_quarantines_with_its_reason(
    local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    from flows.landing import LanceSink, land_batch
    from flows.prepare import prepare_video
    from flows.single import score_video
    from storage import schema
    from storage.lance_store import LanceStore
    from storage.s3 import list_videos
    from tasks.caption import caption_clips, load_captioner
    from tasks.embed import load_embedder

    # night_harbour: a dark shot (night sea) and a bright one (test pattern).
    s3_client.upload_file(str(samples["night_harbour"].path), bucket, "nh.mp4")
    cfg = config(tmp_path, local_s3.endpoint_url, bucket)
    stages = cfg.clip_stages()
    [obj] = list_videos(s3_client, bucket)
    video = prepare_video(obj, cfg, stages)
    dark, bright = video.clips
    assert dark.rejection is not None and dark.rejection.stage == "brightness"
    assert bright.alive and bright.scores["brightness"] > 0.2
    caption_clips(video.alive_clips(), load_captioner(cfg.caption))
    store = LanceStore(cfg.lance_uri)
    extra = tuple(f for s in stages for f in s.columns)
    land_batch([video], cfg, "run", load_embedder("minilm"), [LanceSink(store)], extra)
    [row] = store.rows(schema.CLIPS)
    assert row["brightness"] == pytest.approx(bright.scores["brightness"], abs=1e-4)
    [q] = store.rows(schema.QUARANTINE)
    assert (q["stage"], q["reason"]) == ("brightness", "out_of_bounds")
    # `capflow score` runs the same list: the new stage's score and verdict show up.
    shown = score_video(samples["night_harbour"].path, cfg)
    assert "brightness" in shown["scores"] and "brightness" in shown["verdicts"]
