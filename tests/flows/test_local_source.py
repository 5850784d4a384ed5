"""A folder of videos is a source with a bucket's semantics: incremental by size and
mtime (or content), changed files re-done, deleted ones pruned, links not followed.
Real flow on the Prefect API, LanceDB on disk, files read in place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from tests.helpers import flow_config

pytestmark = pytest.mark.slow


def sources(lance_uri: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in LanceStore(lance_uri).rows(schema.CLIPS):
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    return counts


def test_a_folder_is_curated_incrementally_like_a_bucket(
    prefect_api: None, samples: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = tmp_path / "my videos"
    (videos / "day 2").mkdir(parents=True)
    shutil.copy(samples["night_harbour"].path, videos / "harbour.mp4")
    shutil.copy(samples["sunset_meadow"].path, videos / "day 2" / "meadow.mp4")
    shutil.copy(samples["not_a_video"].path, videos / "broken.mp4")
    outside = tmp_path / "outside.mp4"
    shutil.copy(samples["fractal_bars"].path, outside)
    (videos / "link.mp4").symlink_to(outside)  # not followed: nothing outside is read

    monkeypatch.chdir(tmp_path)
    lance = tmp_path / "lance"
    where = ["--lance-uri", str(lance), "--workdir", str(tmp_path / "work")]
    ran = CliRunner().invoke(app, ["run", "my videos", *where])
    assert ran.exit_code == 0, ran.output
    root = f"file://{videos.resolve()}"
    assert sources(str(lance)) == {f"{root}/harbour.mp4": 2, f"{root}/day 2/meadow.mp4": 2}
    quarantine = {r["key"]: r["reason"] for r in LanceStore(str(lance)).rows(schema.QUARANTINE)}
    assert quarantine == {"broken.mp4": "not_video"}

    config = flow_config("", str(videos.resolve()), tmp_path, workdir=str(tmp_path / "work"))
    again = run_curate(config)
    assert (again["seen"], again["skipped"], again["landed"]) == (3, 3, 0)

    # Same name, new content; another file deleted: one re-done, one pruned.
    shutil.copy(samples["fractal_bars"].path, videos / "harbour.mp4")
    (videos / "day 2" / "meadow.mp4").unlink()
    changed = run_curate(config)
    assert (changed["landed"], changed["pruned"]) == (1, 1)
    rows = LanceStore(str(lance)).rows(schema.CLIPS)
    assert {r["key"] for r in rows} == {"harbour.mp4"}
    assert len({r["etag"] for r in rows}) == 1  # only the new version's clips

    # By content, a file whose mtime alone changed is not new work; by stat it is.
    by_content = config.model_copy(
        update={"source": config.source.model_copy(update={"identity": "content"})}
    )
    run_curate(by_content)  # versions now by content
    os.utime(videos / "harbour.mp4", (1_000_000_000, 1_000_000_000))
    assert run_curate(by_content)["landed"] == 0
    assert run_curate(config)["landed"] == 1


def test_a_manifest_of_s3_and_file_uris_is_a_source_and_a_missing_entry_is_quarantined(
    prefect_api: None,
    local_s3: Any,
    s3_client: Any,
    bucket: str,
    samples: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_client.upload_file(str(samples["night_harbour"].path), bucket, "raw/harbour.mp4")
    local = tmp_path / "meadow.mp4"
    shutil.copy(samples["sunset_meadow"].path, local)
    manifest = tmp_path / "videos.csv"
    manifest.write_text(
        "uri,note\n"
        f"s3://{bucket}/raw/harbour.mp4,from the bucket\n"
        f"{local.as_uri()},a local file\n"
        f"s3://{bucket}/raw/never-uploaded.mp4,a typo\n"
    )
    monkeypatch.chdir(tmp_path)
    lance = tmp_path / "lance"
    where = ["--lance-uri", str(lance), "--workdir", str(tmp_path / "work")]
    ran = CliRunner().invoke(
        app, ["run", "videos.csv", "--endpoint-url", local_s3.endpoint_url, *where]
    )
    assert ran.exit_code == 0, ran.output
    assert sources(str(lance)) == {f"s3://{bucket}/raw/harbour.mp4": 2, local.as_uri(): 2}
    store = LanceStore(str(lance))
    quarantine = {(r["key"], r["reason"]) for r in store.rows(schema.QUARANTINE)}
    assert quarantine == {("raw/never-uploaded.mp4", "source_missing")}

    # The same manifest again: nothing to do; as JSONL, the same objects.
    jsonl = tmp_path / "videos.jsonl"
    jsonl.write_text("".join(f'{{"uri": "{u}"}}\n' for u in
                             [f"s3://{bucket}/raw/harbour.mp4", local.as_uri()]))  # fmt: skip
    again = CliRunner().invoke(
        app, ["run", "videos.jsonl", "--endpoint-url", local_s3.endpoint_url, *where]
    )
    assert again.exit_code == 0 and "skipped 2" in again.output, again.output
