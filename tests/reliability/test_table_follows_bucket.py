"""The table is what the bucket holds: overwrites, deletions, re-processing with another
config and fixed objects leave nothing stale, and the outcome does not depend on how a run
was batched, partitioned or resumed. Real flow, SeaweedFS, LanceDB on disk."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from tests.helpers import flow_config, make_media

pytestmark = pytest.mark.slow


def snapshot(lance_uri: str) -> dict[str, Any]:
    """What a run left behind, in a form two runs can be compared by."""
    store = LanceStore(lance_uri)
    clips = store.rows(schema.CLIPS)
    return {
        "clips": sorted((r["key"], r["etag"], r["start_s"], r["end_s"]) for r in clips),
        "captions": sorted((r["clip_id"], r["caption"]) for r in clips),
        "quarantine": sorted(
            (r["key"], r["etag"], r["reason"]) for r in store.rows(schema.QUARANTINE)
        ),
        "ledger": sorted((r["key"], r["etag"], r["status"]) for r in store.rows(schema.LEDGER)),
        "versions": sorted(r["clip_id"] for r in store.rows(schema.CAPTION_VERSIONS)),
    }


def keys_of(rows: list[tuple]) -> set[str]:
    return {r[0] for r in rows}


def test_an_overwrite_that_is_refused_or_yields_no_clips_removes_the_old_clips(
    prefect_api: None, local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    for key, name in (("a.mp4", "night_harbour"), ("b.mp4", "sunset_meadow")):
        s3_client.upload_file(str(samples[name].path), bucket, key)
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path)
    run_curate(config)
    assert keys_of(snapshot(config.lance_uri)["clips"]) == {"a.mp4", "b.mp4"}

    # a.mp4 becomes bytes that are no video; b.mp4 a video too short for any clip.
    s3_client.put_object(Bucket=bucket, Key="a.mp4", Body=random.Random(3).randbytes(4096))
    short = make_media(tmp_path / "short.mp4", "testsrc2=s=320x180:r=25", 1.5)
    s3_client.upload_file(str(short), bucket, "b.mp4")
    report = run_curate(config)
    assert (report["landed"], report["quarantined"]) == (0, 2)
    after = snapshot(config.lance_uri)
    assert after["clips"] == []  # nothing of the old versions is searchable any more
    assert after["versions"] == []
    reasons = {(k, reason) for k, _, reason in after["quarantine"]}
    assert reasons == {("a.mp4", "not_video"), ("b.mp4", "no_clips")}
    assert {(k, s) for k, _, s in after["ledger"]} == {("a.mp4", "quarantined"),
                                                      ("b.mp4", "quarantined")}  # fmt: skip


def test_an_object_deleted_from_the_bucket_is_pruned_on_the_next_run(
    prefect_api: None, local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    for key, name in (("raw/a.mp4", "night_harbour"), ("raw/b.mp4", "sunset_meadow"),
                      ("raw/bad.mp4", "not_a_video"), ("other/c.mp4", "fractal_bars")):  # fmt: skip
        s3_client.upload_file(str(samples[name].path), bucket, key)
    everything = flow_config(local_s3.endpoint_url, bucket, tmp_path)
    run_curate(everything)
    for key in ("raw/b.mp4", "raw/bad.mp4", "other/c.mp4"):
        s3_client.delete_object(Bucket=bucket, Key=key)

    # A run over raw/ prunes what left raw/, and nothing under other prefixes.
    raw = flow_config(local_s3.endpoint_url, bucket, tmp_path, prefix="raw/")
    report = run_curate(raw)
    assert report["pruned"] == 2 and report["seen"] == report["skipped"] == 1
    after = snapshot(raw.lance_uri)
    assert keys_of(after["clips"]) == {"raw/a.mp4", "other/c.mp4"}
    # raw/bad.mp4's refusal went with it; c's (its still colour bars) is another prefix's
    assert {k for k, _, _ in after["quarantine"]} == {"other/c.mp4"}
    assert keys_of(after["ledger"]) == {"raw/a.mp4", "other/c.mp4"}
    a_ids = {cid for cid, _ in after["captions"]}
    assert set(after["versions"]) == a_ids  # no caption version of a pruned clip

    # With pruning off, what left the bucket stays (the other prefix, this time).
    kept = flow_config(local_s3.endpoint_url, bucket, tmp_path,
                       source={"prune_missing": False})  # fmt: skip
    assert run_curate(kept)["pruned"] == 0
    assert keys_of(snapshot(kept.lance_uri)["clips"]) == {"raw/a.mp4", "other/c.mp4"}
    assert run_curate(everything)["pruned"] == 1
    assert keys_of(snapshot(everything.lance_uri)["clips"]) == {"raw/a.mp4"}


def test_reprocessing_with_another_clip_config_replaces_the_whole_clip_set(
    prefect_api: None, local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    for name in ("fractal_bars", "night_harbour"):
        s3_client.upload_file(str(samples[name].path), bucket, f"{name}.mp4")
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path)
    run_curate(config)
    before = snapshot(config.lance_uri)["clips"]
    wider = flow_config(local_s3.endpoint_url, bucket, tmp_path, clips={"margin_s": 0.2},
                        reprocess=True)  # fmt: skip
    run_curate(wider)
    fresh = flow_config(local_s3.endpoint_url, bucket, tmp_path / "fresh", clips={"margin_s": 0.2})
    run_curate(fresh)
    after = snapshot(wider.lance_uri)["clips"]
    assert after != before and len(after) == len(before)  # other spans, not old + new
    assert after == snapshot(fresh.lance_uri)["clips"]  # exactly what a fresh run makes


def test_a_fixed_object_loses_the_quarantine_rows_of_its_broken_version(
    prefect_api: None, local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    s3_client.upload_file(str(samples["not_a_video"].path), bucket, "x.mp4")
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path)
    run_curate(config)
    assert [r[2] for r in snapshot(config.lance_uri)["quarantine"]] == ["not_video"]
    s3_client.upload_file(str(samples["night_harbour"].path), bucket, "x.mp4")  # fixed
    run_curate(config)
    after = snapshot(config.lance_uri)
    assert after["quarantine"] == []
    assert len(after["clips"]) == 2 and {s for _, _, s in after["ledger"]} == {"done"}


def test_the_outcome_does_not_depend_on_batching_partitions_or_resume_points(
    prefect_api: None, local_s3: Any, s3_client: Any, bucket: str, samples: dict, tmp_path: Path
) -> None:
    """Four byte-identical uploads caption alike: they land whether one landing batch
    holds them all or one each, and every way of cutting the run gives the same table."""
    for i in range(4):
        s3_client.upload_file(str(samples["sunset_meadow"].path), bucket, f"copy/{i}.mp4")
    for name in ("night_harbour", "grey_fog", "not_a_video"):
        s3_client.upload_file(str(samples[name].path), bucket, f"raw/{name}.mp4")

    def run(tmp: Path, **extra: Any) -> dict[str, Any]:
        config = flow_config(local_s3.endpoint_url, bucket, tmp, **extra)
        report = run_curate(config)
        assert report["failed"] == 0
        return snapshot(config.lance_uri)

    reference = run(tmp_path / "big", chunk_objects=16)
    assert keys_of(reference["clips"]) >= {f"copy/{i}.mp4" for i in range(4)}
    assert run(tmp_path / "small", chunk_objects=1, caption={"pool_size": 1}) == reference
    parts = tmp_path / "parts"
    for p in range(3):  # three partitions, one after another
        run(parts, source={"partition": p, "partitions": 3})
    assert snapshot(str(parts / "lance")) == reference
    resumed = tmp_path / "resumed"
    run(resumed, source={"prefix": "copy/"})  # a run that got as far as copy/ ...
    assert run(resumed) == reference  # ... and its resumption
