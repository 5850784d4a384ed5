"""The gate inside the flow: only passing rows land, the rest are quarantined with the
checks they failed, counts reconcile, and a run failing too many clips fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flows.curate import QualityGateFailed, run_curate
from storage import schema
from storage.lance_store import LanceStore
from storage.s3 import S3Options, ensure_bucket, make_client
from tests.helpers import flow_config

pytestmark = pytest.mark.slow


def test_gate_splits_the_batch_and_the_threshold_fails_the_run(
    prefect_api: None, local_s3: Any, samples: dict, tmp_path: Path
) -> None:
    client = make_client(S3Options(endpoint_url=local_s3.endpoint_url))
    bucket = "quality-flow"
    ensure_bucket(client, bucket)
    for name in ("night_harbour", "sunset_meadow", "fractal_bars"):
        client.upload_file(str(samples[name].path), bucket, f"raw/{name}.mp4")
    # The describer's captions of these seven clips run 46-56 words: a 52-word floor fails
    # some and passes others. 0.1 as the allowed failing share then fails the run.
    config = flow_config(
        local_s3.endpoint_url,
        bucket,
        tmp_path,
        prefix="raw/",
        quality={"min_caption_words": 52, "max_failed_fraction": 0.1},
    )
    with pytest.raises(QualityGateFailed, match="max_failed_fraction"):
        run_curate(config)
    store = LanceStore(config.lance_uri)
    landed = store.rows(schema.CLIPS)
    failed = [r for r in store.rows(schema.QUARANTINE) if r["reason"] == "quality_failed"]
    assert landed and failed  # the good rows landed before the run failed
    assert all(len(r["caption"].split()) >= 52 for r in landed)
    assert all("caption_word_count" in r["detail"] for r in failed)
    assert len(landed) + len(failed) == 2 + 2 + 2  # every moving clip of the three videos
    [report_file] = (tmp_path / "work" / "reports").glob("*.json")
    report = json.loads(report_file.read_text())
    assert report["clips_gated"] == 6 and report["clips_failed_gate"] == len(failed)
    assert report["checks"]["caption_word_count"] == [6, len(failed)]
    assert report["seen"] == report["landed"] + report["quarantined"] + report["skipped"]
    assert report["data_docs"] and Path(report["data_docs"].removeprefix("file://")).exists()
