"""Keys are data on the terminal too: control characters in them are shown, not obeyed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.terminal import inert, visible
from storage import schema
from storage.lance_store import LanceStore

KEYS = ["ansi \x1b[31mRED\x1b[0m.mp4", "two\nlines.mp4", "rtl \u202egnp.mp4"]


def test_control_characters_become_visible_escapes() -> None:
    assert visible(KEYS[0]) == "ansi \\x1b[31mRED\\x1b[0m.mp4"
    assert visible(KEYS[1]) == "two\\nlines.mp4"
    assert visible(KEYS[2]) == "rtl \\u202egnp.mp4"
    assert visible("plain ünïcödé") == "plain ünïcödé"
    assert inert("[red]not markup[/]") == "\\[red]not markup\\[/]"


@pytest.mark.slow
def test_a_run_prints_hostile_keys_inert_and_stores_them_verbatim(
    prefect_api: None, local_s3: Any, s3_client: Any, samples: dict, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from flows.cli import app, console

    bucket = "keys"
    s3_client.create_bucket(Bucket=bucket)
    for key in KEYS:
        s3_client.upload_file(str(samples["night_harbour"].path), bucket, key)
    args = ["run", "--bucket", bucket, "--endpoint-url", local_s3.endpoint_url]
    args += ["--lance-uri", str(tmp_path / "lance"), "--workdir", str(tmp_path / "work")]
    width, console.width = console.width, 200  # one progress line per object, unwrapped
    try:
        result = CliRunner().invoke(app, args)
    finally:
        console.width = width
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    lines = result.output.splitlines()
    for key in KEYS:
        assert any(visible(key) in line and "landed" in line for line in lines), key
    stored = {r["key"] for r in LanceStore(str(tmp_path / "lance")).rows(schema.CLIPS)}
    assert stored == set(KEYS)  # byte for byte
