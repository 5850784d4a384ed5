"""A newcomer's first hour: errors that are one line naming the setting, and the dataset
found and shown without knowing where it lives. The errors go through the real entry
point in a subprocess (what a user's shell sees); the dataset commands through typer's
runner against a real run on SeaweedFS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.local_s3 import free_port

ROOT = Path(__file__).resolve().parents[2]


def capflow(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> tuple[int, str]:
    """Exit code and everything printed, from `python -m flows.cli ARGS`."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True, text=True, timeout=300, env=full, cwd=cwd,
    )  # fmt: skip
    return done.returncode, (done.stdout + done.stderr).strip()


@pytest.mark.parametrize(
    ("args", "env", "code", "words"),
    [
        (["--captioner", "hf:/nonexistent"], {}, 2, "caption.captioner 'hf:/nonexistent'"),
        (["--captioner", "openai:http://127.0.0.1:9/v1"], {}, 2, "add '#<model>'"),
        (["--mode", "bogus"], {}, 2, "caption.mode must be one of diffsw, fast"),
        (["--captioner", "openai:http://127.0.0.1:9/v1#m"],
         {"CAPFLOW_CAPTION__RETRIES": "0"}, 1, "is the server running? (caption.captioner"),
    ],
)  # fmt: skip
def test_a_captioner_that_cannot_work_is_one_line(
    samples: dict, args: list[str], env: dict[str, str], code: int, words: str
) -> None:
    rc, out = capflow("caption", str(samples["sunset_meadow"].path), *args, env=env)
    last = out.splitlines()[-1]
    assert rc == code and words in last, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out


def test_an_s3_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    no_keys = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
               "AWS_CONFIG_FILE": str(tmp_path / "none"),
               "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}  # fmt: skip
    down = ["run", "--bucket", "b", "--endpoint-url", "http://127.0.0.1:9"]
    rc, out = capflow(*down, env=no_keys)
    assert rc == 1 and out.startswith("error: no S3 credentials"), out
    assert len(out.splitlines()) == 1
    rc, out = capflow(*down, env={"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    assert rc == 1 and out == (
        "error: cannot reach the S3 endpoint http://127.0.0.1:9: is it running? "
        "(s3.endpoint_url / --endpoint-url)"
    ), out


def test_a_misspelt_setting_is_one_line_and_a_stray_variable_only_warns(tmp_path: Path) -> None:
    bad = tmp_path / "run.yaml"
    bad.write_text("source:\n  prefx: raw/\n")
    rc, out = capflow("status", "--config", str(bad), "--lance-uri", str(tmp_path))
    assert rc == 2 and out == (
        f"error: unknown setting source.prefx (did you mean source.prefix?) (set in {bad})"
    ), out
    rc, out = capflow("status", "--lance-uri", str(tmp_path / "empty"),
                      env={"CAPFLOW_DEBUG": "1", "CAPFLOW_MODELS": "/models"})  # fmt: skip
    assert rc == 0, out
    assert "ignoring CAPFLOW_DEBUG: it is not a capflow setting" in out
    assert "objects: none" in out


@pytest.mark.slow
def test_search_status_and_show_find_the_table_the_last_run_here_wrote(
    prefect_api: None,
    local_s3: Any,
    s3_client: Any,
    bucket: str,
    samples: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_client.upload_file(str(samples["sunset_meadow"].path), bucket, "meadow.mp4")
    here = tmp_path / "project"
    here.mkdir()
    monkeypatch.chdir(here)
    lance = tmp_path / "somewhere-else" / "lance"
    runner = CliRunner()
    where = ["--lance-uri", str(lance), "--workdir", str(tmp_path / "work")]
    ran = runner.invoke(app, ["run", "--bucket", bucket, "--endpoint-url", local_s3.endpoint_url,
                              *where])  # fmt: skip
    assert ran.exit_code == 0, ran.output

    found = runner.invoke(app, ["search", "a green meadow", "--json"])
    assert found.exit_code == 0, found.output
    assert "the table the last `capflow run` here wrote" in found.stderr
    hits = json.loads(found.stdout)
    assert hits and all(h["source"].endswith("meadow.mp4") for h in hits)

    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["objects"] == {"done": 1} and status["clips"] == len(hits) == 2
    assert status["runs"] and status["runs"][0]["clips"] == 2

    shown = runner.invoke(app, ["show", hits[0]["clip_id"], "--json"])
    record = json.loads(shown.stdout)
    assert record["clip_id"] == hits[0]["clip_id"] and record["caption"] == hits[0]["caption"]
    assert record["differential_captions"] and record["caption_versions"]
    assert "text_embedding" not in record  # vectors are not for reading

    monkeypatch.chdir(tmp_path)  # a folder no run wrote from
    lost = runner.invoke(app, ["status"])
    assert lost.exit_code == 2 and "pass --lance-uri" in lost.stderr


def test_s3_serve_gives_a_private_endpoint_file_and_upload_fills_it(
    samples: dict, tmp_path: Path
) -> None:
    import signal
    import time

    port, data = free_port(), tmp_path / "s3"
    serve = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "s3", "serve", "--dir", str(data), "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        env_file = data / "s3.env"
        deadline = time.monotonic() + 60
        while not env_file.exists() and time.monotonic() < deadline and serve.poll() is None:
            time.sleep(0.2)
        assert env_file.exists(), serve.stdout.read() if serve.stdout else ""
        assert env_file.stat().st_mode & 0o077 == 0  # readable by the user only
        env = dict(line.removeprefix("export ").split("=", 1)
                   for line in env_file.read_text().splitlines())  # fmt: skip
        assert env["CAPFLOW_S3__ENDPOINT_URL"] == f"http://127.0.0.1:{port}"

        videos = tmp_path / "videos"
        (videos / "day1").mkdir(parents=True)
        for name in ("night_harbour", "sunset_meadow"):
            (videos / "day1" / f"{name}.mp4").write_bytes(samples[name].path.read_bytes())
        (videos / "notes.txt").write_text("not a video")
        rc, out = capflow("s3", "upload", str(videos), "s3://mine/raw", env=env)
        assert rc == 0 and "2 video(s) under s3://mine/raw/" in out, out

        from storage.s3 import S3Options, list_videos, make_client

        client = make_client(S3Options(endpoint_url=env["CAPFLOW_S3__ENDPOINT_URL"],
                                       access_key_id=env["AWS_ACCESS_KEY_ID"],
                                       secret_access_key=env["AWS_SECRET_ACCESS_KEY"]))  # fmt: skip
        keys = sorted(o.key for o in list_videos(client, "mine"))
        assert keys == ["raw/day1/night_harbour.mp4", "raw/day1/sunset_meadow.mp4"]
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        assert serve.wait(timeout=30) == 0


@pytest.mark.slow
def test_a_run_over_a_folder_shows_clips_and_stages_and_keeps_prefect_s_lines_in_a_log(
    samples: dict, tmp_path: Path
) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "meadow.mp4").write_bytes(samples["sunset_meadow"].path.read_bytes())
    env = {"PREFECT_API_URL": "", "PREFECT_HOME": str(tmp_path / "prefect")}
    rc, out = capflow("run", "videos", env=env, cwd=tmp_path)
    assert rc == 0, out
    assert "clips captioned" in out and "2/2" in out
    assert "landed      file://" in out
    assert " | INFO " not in out and "Beginning flow run" not in out  # not in the bar
    [log] = (tmp_path / "capflow-work" / "logs").glob("run-*.log")
    assert "Finished in state Completed" in log.read_text()
    rc, out = capflow("search", "a green meadow", "--json", cwd=tmp_path)
    assert rc == 0 and "meadow.mp4" in out, out


def test_debug_shows_the_traceback_instead_of_the_line(samples: dict) -> None:
    video = str(samples["sunset_meadow"].path)
    rc, out = capflow("--debug", "caption", video, "--captioner", "hf:/nonexistent")
    assert rc == 1 and "Traceback (most recent call last)" in out
    assert "ModelNotAvailable" in out
