from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.s3 import download_object, list_videos
from storage.types import Rejection, RejectReason


def put(client: object, bucket: str, key: str, body: bytes) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=body)  # type: ignore[attr-defined]


def test_listing_keeps_video_keys_under_the_prefix(s3_client: object, bucket: str) -> None:
    for key in ["raw/a.mp4", "raw/B.MOV", "raw/notes.txt", "raw/folder/", "other/c.mp4"]:
        put(s3_client, bucket, key, b"x")
    keys = sorted(o.key for o in list_videos(s3_client, bucket, "raw/"))
    assert keys == ["raw/B.MOV", "raw/a.mp4"]


def test_listing_paginates(s3_client: object, bucket: str) -> None:
    for i in range(7):
        put(s3_client, bucket, f"p/{i:05d}.mp4", b"")
    assert len(list(list_videos(s3_client, bucket, "p/", page_size=3))) == 7


def test_listing_filters_by_last_modified(s3_client: object, bucket: str) -> None:
    put(s3_client, bucket, "v.mp4", b"x")
    now = datetime.now(UTC)
    assert [o.key for o in list_videos(s3_client, bucket, since=now - timedelta(hours=1))] == [
        "v.mp4"
    ]
    assert list(list_videos(s3_client, bucket, since=now + timedelta(hours=1))) == []
    assert list(list_videos(s3_client, bucket, until=now - timedelta(hours=1))) == []


def test_keys_are_data_not_paths(s3_client: object, bucket: str, tmp_path: Path) -> None:
    # SeaweedFS refuses "." and ".." path segments (AWS accepts them), so ".." sits inside one.
    key = "-lead $(rm -rf x); concat:é ü/..clip 1.mp4"
    put(s3_client, bucket, key, b"payload")
    [obj] = list_videos(s3_client, bucket)
    assert obj.key == key
    dest = tmp_path / "work" / "input"
    assert download_object(s3_client, obj, dest) == dest
    assert dest.read_bytes() == b"payload"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["input", "work"]


def test_changed_object_is_source_changed(s3_client: object, bucket: str, tmp_path: Path) -> None:
    put(s3_client, bucket, "v.mp4", b"one")
    [obj] = list_videos(s3_client, bucket)
    put(s3_client, bucket, "v.mp4", b"two")  # overwritten after listing
    result = download_object(s3_client, obj, tmp_path / "input")
    assert isinstance(result, Rejection) and result.reason == RejectReason.SOURCE_CHANGED
    assert not (tmp_path / "input").exists()


def test_deleted_object_is_source_missing(s3_client: object, bucket: str, tmp_path: Path) -> None:
    put(s3_client, bucket, "v.mp4", b"one")
    [obj] = list_videos(s3_client, bucket)
    s3_client.delete_object(Bucket=bucket, Key="v.mp4")  # type: ignore[attr-defined]
    result = download_object(s3_client, obj, tmp_path / "input")
    assert isinstance(result, Rejection) and result.reason == RejectReason.SOURCE_MISSING
