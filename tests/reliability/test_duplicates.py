"""Near-duplicates at landing: one video under several keys (as is, re-encoded smaller at
another bitrate, trimmed by a second) keeps one set of clips, whatever order the copies
arrive in; the others stay rows marked `duplicate_of`, out of search unless asked.
Real flow, SeaweedFS, LanceDB on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flows.curate import run_curate
from storage import schema
from storage.lance_store import LanceStore
from storage.search import filters_where
from tasks import media
from tests.helpers import flow_config

pytestmark = pytest.mark.slow


def variant(src: Path, out: Path, *args: str) -> Path:
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    argv = [media.ffmpeg_path(), "-nostdin", "-v", "error", "-i", str(src), *args, *x264]
    argv += ["-y", str(out)]
    assert media.run(argv, timeout_s=120).returncode == 0
    return out


@pytest.fixture(scope="module")
def copies(samples: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("copies")
    src = samples["fractal_bars"].path
    return {
        "b/original.mp4": src,
        "a/smaller.mp4": variant(src, tmp / "small.mp4", "-b:v", "120k", "-vf", "scale=256:144"),
        "c/trimmed.mp4": variant(src, tmp / "trim.mp4", "-ss", "1"),
        "d/other.mp4": samples["sunset_meadow"].path,
    }


def marks(lance_uri: str) -> dict[tuple[str, float], str | None]:
    """(key, start) -> the key of the clip it duplicates, or None for a kept clip."""
    rows = LanceStore(lance_uri).rows(schema.CLIPS)
    key_of = {r["clip_id"]: r["key"] for r in rows}
    return {(r["key"], r["start_s"]): key_of.get(r["duplicate_of"]) if r["duplicate_of"]
            else None for r in rows}  # fmt: skip


def upload(s3_client: Any, bucket: str, copies: dict[str, Path], keys: list[str]) -> None:
    for key in keys:
        s3_client.upload_file(str(copies[key]), bucket, key)


def test_copies_are_marked_whatever_order_they_land_in(
    prefect_api: None,
    local_s3: Any,
    s3_client: Any,
    bucket: str,
    copies: dict[str, Path],
    tmp_path: Path,
) -> None:
    # All at once, in one batch.
    upload(s3_client, bucket, copies, list(copies))
    together = flow_config(local_s3.endpoint_url, bucket, tmp_path / "together")
    report = run_curate(together)
    at_once = marks(together.lance_uri)
    kept = {k for k, of in at_once.items() if of is None}
    # The first key in stable order keeps its clips; every clip of the copies points at it.
    assert {k for k, _ in kept} == {"a/smaller.mp4", "d/other.mp4"}, at_once
    copied = {k: of for k, of in at_once.items() if k[0] in ("b/original.mp4", "c/trimmed.mp4")}
    assert copied and set(copied.values()) == {"a/smaller.mp4"}, at_once
    assert report["funnel"]["clips_marked_duplicate"] == len(copied)

    # One at a time, the original first, in batches of one: the same outcome, so the
    # original's clips, landed as keepers, are marked once the smaller copy arrives.
    one_by_one = flow_config(local_s3.endpoint_url, bucket, tmp_path / "one", chunk_objects=1)
    for key in ("b/original.mp4", "d/other.mp4", "c/trimmed.mp4", "a/smaller.mp4"):
        run_curate(one_by_one.model_copy(update={"source": one_by_one.source.model_copy(
            update={"prefix": key})}))  # fmt: skip
    assert marks(one_by_one.lance_uri) == at_once

    # The keeper leaves the bucket: the original keeps its clips again, the trim points at it.
    s3_client.delete_object(Bucket=bucket, Key="a/smaller.mp4")
    run_curate(together)
    after = marks(together.lance_uri)
    assert all(of is None for (key, _), of in after.items() if key == "b/original.mp4"), after
    assert {of for (key, _), of in after.items() if key == "c/trimmed.mp4"} == {"b/original.mp4"}


def test_search_leaves_duplicates_out_unless_asked_and_filters_on_the_new_scores(
    prefect_api: None,
    local_s3: Any,
    s3_client: Any,
    bucket: str,
    copies: dict[str, Path],
    tmp_path: Path,
) -> None:
    upload(s3_client, bucket, copies, ["a/smaller.mp4", "b/original.mp4"])
    config = flow_config(local_s3.endpoint_url, bucket, tmp_path)
    run_curate(config)
    store = LanceStore(config.lance_uri)
    [row] = store.rows(schema.CLIPS, "key = 'b/original.mp4'", ["text_embedding"])[:1]
    query = np.asarray(row["text_embedding"]).tolist()
    default = {h.source.rsplit("/", 1)[-1] for h in store.search(query, k=20)}
    everything = {
        h.source.rsplit("/", 1)[-1] for h in store.search(query, k=20, include_duplicates=True)
    }
    assert default == {"smaller.mp4"} and everything == {"smaller.mp4", "original.mp4"}
    hidden = store.rows(schema.CLIPS, "duplicate_of IS NOT NULL", ["duplicate_similarity"])
    assert hidden and all(r["duplicate_similarity"] >= 0.92 for r in hidden)

    # The test pattern carries a frame counter (text); the fractal shot none.
    text = {r["clip_id"]: r["text_area"] for r in store.rows(schema.CLIPS)}
    assert min(text.values()) == 0 < max(text.values())
    clean = store.search(query, k=20, where=filters_where(max_text_area=0.001))
    assert clean and all(text[h.clip_id] <= 0.001 for h in clean)
    assert len(clean) < len(store.search(query, k=20))
