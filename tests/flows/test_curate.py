"""The whole flow on the real services: SeaweedFS, the Prefect API, LanceDB on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from flows.config import RunConfig
from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from tasks.embed import EmbedConfig, embed_texts
from tests.helpers import flow_config

pytestmark = pytest.mark.slow

# What the samples hold, by construction (see flows/samples.py): clips per video.
# fractal_bars' colour-bars shot is a still picture: `static`, quarantined by the motion stage.
EXPECTED_CLIPS = {"raw/night_harbour.mp4": 2, "raw/sunset_meadow.mp4": 2, "raw/fractal_bars.mp4": 2}
EXPECTED_QUARANTINE = {
    "raw/grey_fog.mp4": "low_aesthetic",
    "raw/not_a_video.mp4": "not_video",
    "raw/fractal_bars.mp4": "static",
}


def upload(client: Any, bucket: str, samples: dict, names: list[str] | None = None) -> None:
    for name, sample in samples.items():
        if names is None or name in names:
            client.upload_file(str(sample.path), bucket, f"raw/{sample.path.name}")


def config_for(local_s3: Any, bucket: str, tmp: Path) -> RunConfig:
    return flow_config(local_s3.endpoint_url, bucket, tmp, prefix="raw/")


def clips_by_key(store: LanceStore) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in store.rows(schema.CLIPS):
        out.setdefault(r["key"], []).append(r)
    return out


@pytest.fixture(scope="module")
def curated(
    prefect_api: None, local_s3: Any, samples: dict, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    from storage.s3 import S3Options, ensure_bucket, make_client

    client = make_client(S3Options(endpoint_url=local_s3.endpoint_url))
    bucket = "curate-e2e"
    ensure_bucket(client, bucket)
    upload(client, bucket, samples)
    tmp = tmp_path_factory.mktemp("curate")
    config = config_for(local_s3, bucket, tmp)
    report = run_curate(config)
    return {"client": client, "bucket": bucket, "config": config, "report": report, "tmp": tmp}


def test_expected_clips_land_with_captions_and_embeddings(curated: dict) -> None:
    store = LanceStore(curated["config"].lance_uri)
    by_key = clips_by_key(store)
    assert {k: len(v) for k, v in by_key.items()} == EXPECTED_CLIPS
    for rows in by_key.values():
        for r in rows:
            assert len(r["text_embedding"]) == 384
            assert r["caption"] and r["caption_model"] == "describe"
            assert r["etag"] and r["source"] == f"s3://{curated['bucket']}/{r['key']}"
            assert len(r["differential_captions"]) == len(r["keyframe_times"]) >= 1
            assert r["start_s"] < r["end_s"]


def test_bad_objects_are_quarantined_with_their_reason(curated: dict) -> None:
    store = LanceStore(curated["config"].lance_uri)
    reasons = {r["key"]: r["reason"] for r in store.rows(schema.QUARANTINE)}
    assert reasons == EXPECTED_QUARANTINE


def test_counts_reconcile(curated: dict) -> None:
    report = curated["report"]
    assert report["seen"] == 5
    assert (report["landed"], report["quarantined"], report["skipped"], report["failed"]) == (
        3,
        2,
        0,
        0,
    )
    assert report["seen"] == report["landed"] + report["quarantined"] + report["skipped"]
    assert report["clips_landed"] == sum(EXPECTED_CLIPS.values())
    assert (Path(curated["config"].workdir) / "reports" / f"{report['run_id']}.json").exists()


def test_search_for_a_clips_caption_returns_it_first(curated: dict) -> None:
    store = LanceStore(curated["config"].lance_uri)
    rows = store.rows(schema.CLIPS)
    target = next(r for r in rows if r["key"] == "raw/night_harbour.mp4" and not r["duplicate_of"])
    words = " ".join(target["caption"].split()[:12])
    [vector] = embed_texts([words], EmbedConfig())
    hits = store.search(vector.tolist(), k=3)
    assert hits[0].clip_id == target["clip_id"]


def test_the_dark_fast_clip_is_found_by_description(curated: dict) -> None:
    store = LanceStore(curated["config"].lance_uri)
    [vector] = embed_texts(["dark blue scene with fast motion"], EmbedConfig())
    top = store.search(vector.tolist(), k=1)[0]
    assert top.source.endswith("night_harbour.mp4") and top.start_s < 5


def test_rerun_skips_everything_and_lands_no_duplicates(curated: dict) -> None:
    store = LanceStore(curated["config"].lance_uri)
    before = sorted(r["clip_id"] for r in store.rows(schema.CLIPS))
    report = run_curate(curated["config"])
    assert (report["seen"], report["skipped"], report["landed"]) == (5, 5, 0)
    forced = run_curate(curated["config"].model_copy(update={"reprocess": True}))
    assert forced["landed"] == 3
    assert sorted(r["clip_id"] for r in store.rows(schema.CLIPS)) == before
    assert store.count(schema.QUARANTINE) == len(EXPECTED_QUARANTINE)


def test_new_content_replaces_only_that_objects_clips(curated: dict, samples: dict) -> None:
    store = LanceStore(curated["config"].lance_uri)
    old = clips_by_key(store)
    client, bucket = curated["client"], curated["bucket"]
    # Same key, new content: the fractal video's bytes under the sunset's name.
    client.upload_file(str(samples["fractal_bars"].path), bucket, "raw/sunset_meadow.mp4")
    report = run_curate(curated["config"])
    assert (report["landed"], report["skipped"]) == (1, 4)
    new = clips_by_key(store)
    assert len(new["raw/sunset_meadow.mp4"]) == EXPECTED_CLIPS["raw/fractal_bars.mp4"]
    assert {r["etag"] for r in new["raw/sunset_meadow.mp4"]} != {
        r["etag"] for r in old["raw/sunset_meadow.mp4"]
    }
    for key in ("raw/night_harbour.mp4", "raw/fractal_bars.mp4"):
        assert sorted(r["clip_id"] for r in new[key]) == sorted(r["clip_id"] for r in old[key])


def test_cli_search_json_shape(curated: dict) -> None:
    import json

    from typer.testing import CliRunner

    from flows.cli import app

    lance = ["--lance-uri", curated["config"].lance_uri]
    result = CliRunner().invoke(
        app,
        ["search", "dark blue scene with fast motion", "--k", "3", "--json", *lance],
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3
    assert {"clip_id", "source", "start_s", "end_s", "score", "caption"} <= set(hits[0])
    assert hits[0]["source"].startswith(f"s3://{curated['bucket']}/raw/")
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    filtered = CliRunner().invoke(
        app,
        ["search", "scene", "--json", "--where", "aesthetic_score > 9", *lance],
    )
    assert filtered.exit_code == 0, filtered.output
    assert all(h["aesthetic_score"] > 9 for h in json.loads(filtered.stdout))


def test_cli_run_against_the_s3_endpoint(curated: dict, local_s3: Any) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    cfg = curated["config"]
    args = ["run", "--bucket", curated["bucket"], "--prefix", "raw/"]
    args += ["--endpoint-url", local_s3.endpoint_url, "--lance-uri", cfg.lance_uri]
    args += ["--workdir", str(cfg.workdir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "objects seen 5" in result.output and "skipped 5" in result.output


def test_caption_versions_and_resummarize(curated: dict) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    store = LanceStore(curated["config"].lance_uri)
    clip = next(r for r in store.rows(schema.CLIPS) if len(r["keyframe_times"]) >= 2)
    versions = store.rows(schema.CAPTION_VERSIONS, f"clip_id = '{clip['clip_id']}'")
    assert [v["caption_mode"] for v in versions] == ["diffsw"]
    first_t = clip["keyframe_times"][0]
    args = ["resummarize", clip["clip_id"], "--start", str(first_t), "--end", str(first_t + 0.01)]
    result = CliRunner().invoke(app, [*args, "--lance-uri", curated["config"].lance_uri])
    assert result.exit_code == 0, result.output
    versions = store.rows(schema.CAPTION_VERSIONS, f"clip_id = '{clip['clip_id']}'")
    assert sorted(v["caption_mode"] for v in versions) == ["diffsw", "summary"]
    summary = next(v for v in versions if v["caption_mode"] == "summary")
    assert [d["t"] for d in summary["differential_captions"]] == [first_t]  # only the range
    assert store.clip(clip["clip_id"])["caption"] == clip["caption"]  # nothing overwritten


def test_the_flow_uses_the_configured_captioner(
    curated: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from prefect.client.orchestration import get_client

    from tests.models import build_tiny_llava

    model = build_tiny_llava(tmp_path_factory.mktemp("flow-llava"))
    tmp = tmp_path_factory.mktemp("flow-hf")
    config = curated["config"].model_copy(
        update={
            "lance_uri": str(tmp / "lance"),
            "caption": curated["config"].caption.__class__(
                captioner=f"hf:{model}", max_new_tokens=24, pool_size=4
            ),
            # A random model writes random text: the gate fails much of it, which is right.
            "quality": curated["config"].quality.__class__(max_failed_fraction=1.0),
            "limits": curated["config"].limits.model_copy(update={"gpu": 1}),
        }
    )
    report = run_curate(config)
    store = LanceStore(config.lance_uri)
    rows = store.rows(schema.CLIPS)
    assert rows and all(r["caption_model"] == f"hf:{model}" for r in rows)
    assert all(r["caption_seconds"] > 0 for r in rows)
    caption_rejects = [
        r for r in store.rows(schema.QUARANTINE) if r["stage"] in ("caption", "quality")
    ]
    # Every clip the describer run landed reached this captioner too: landed or quarantined.
    expected = LanceStore(curated["config"].lance_uri).count(schema.CLIPS)
    assert len(rows) == report["clips_landed"]
    assert len(rows) + len(caption_rejects) == expected
    with get_client(sync_client=True) as client:
        assert client.read_concurrency_limit_by_tag("gpu").concurrency_limit == 1


def test_the_flow_scores_with_laion_and_stores_the_clip_embedding(
    curated: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import numpy as np

    from tests.models_clip import build_random_aesthetic_mlp, build_tiny_clip

    tmp = tmp_path_factory.mktemp("flow-laion")
    clip_model = str(build_tiny_clip(tmp / "clip"))
    mlp = str(build_random_aesthetic_mlp(tmp / "mlp.pth"))
    base = curated["config"]
    config = base.model_copy(
        update={
            "lance_uri": str(tmp / "lance"),
            "keyframes": base.keyframes.__class__(clip_model=clip_model),
            "aesthetic": base.aesthetic.__class__(
                scorer="laion", clip_model=clip_model, mlp_path=mlp, threshold=-100.0
            ),
        }
    )
    report = run_curate(config)
    rows = LanceStore(config.lance_uri).rows(schema.CLIPS)
    assert len(rows) == report["clips_landed"] > 0
    for r in rows:
        assert r["aesthetic_scorer"] == "laion:mlp.pth"
        assert r["keyframe_feature"] == f"clip:{clip_model}"
        assert len(r["image_embedding"]) == 32
        assert abs(float(np.linalg.norm(r["image_embedding"])) - 1.0) < 1e-4
    # A text query reaches the image embeddings through CLIP's text tower, ranked by cosine.
    from storage.search import search_keyframes
    from tasks.features import load_featurizer

    featurizer = load_featurizer(clip_model)

    class ClipText:
        def embed(self, texts: list[str]) -> np.ndarray:
            return featurizer.embed_text(texts)

    store = LanceStore(config.lance_uri)
    hits = search_keyframes("colour bars", ClipText(), store, k=3)
    [q] = featurizer.embed_text(["colour bars"])
    cosine = {r["clip_id"]: float(np.dot(q, r["image_embedding"])) for r in rows}
    assert [h.score for h in hits] == pytest.approx([cosine[h.clip_id] for h in hits], abs=1e-4)
    best = sorted(cosine.values(), reverse=True)[:3]
    assert [h.score for h in hits] == pytest.approx(best, abs=1e-4)


def test_the_secret_key_is_written_nowhere(curated: dict, local_s3: Any) -> None:
    """The run used a real secret key; scan everything capflow and Prefect kept."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    secret = local_s3.credentials.secret_access_key
    assert secret and os.environ["AWS_SECRET_ACCESS_KEY"] == secret  # the flow really used it
    places = [Path(curated["config"].workdir), Path(curated["config"].lance_uri)]
    scanned = 0
    for root in places:
        for f in root.rglob("*"):
            if f.is_file():
                scanned += 1
                assert secret.encode() not in f.read_bytes(), f
    assert scanned > 10
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        assert runs
        for run in runs:
            assert secret not in json.dumps(run.parameters, default=str)
        logs = client.read_logs(log_filter=LogFilter())
        assert logs and all(secret not in log.message for log in logs)
        artifacts = client.read_artifacts()
        assert artifacts and all(secret not in str(a.data) for a in artifacts)


def test_the_report_follows_clips_through_the_stages(curated: dict) -> None:
    report = curated["report"]
    funnel = report["funnel"]
    assert funnel["clips_landed"] == report["clips_landed"] == 6
    # The funnel follows the run's own stage list, whatever it holds.
    stages = ["clips_cut", *curated["config"].stages, "clips_captioned", "clips_passed_gate"]
    assert list(funnel) == [*stages, "clips_landed", "clips_marked_duplicate"]
    counts = [funnel[s] for s in [*stages, "clips_landed"]]
    assert counts == sorted(counts, reverse=True)  # never more clips after a filter
    assert funnel["keyframes"] > funnel["motion"]  # the colour bars are a still picture
    assert funnel["motion"] > funnel["aesthetic"]  # grey_fog's clip fails the aesthetic
    # night_harbour's test pattern is the same footage as fractal_bars', which comes first
    assert funnel["clips_marked_duplicate"] == 1
    assert sum(report["aesthetic_hist"]) == sum(report["motion_hist"]) == 6
    assert sum(report["stage_hists"]["text_area"]) == 6
    assert 5 <= report["caption_words"]["min"] <= report["caption_words"]["max"]
    for stage in ("download", "probe", "transitions", "keyframes", "aesthetic", "caption",
                  "embed", "gate", "land"):  # fmt: skip
        assert report["stage_seconds"][stage] > 0, stage
    assert report["clips_per_s"] > 0
