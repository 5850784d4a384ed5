from __future__ import annotations

import json

from typer.testing import CliRunner

from flows.cli import app


def test_caption_json_shape_with_the_describer(samples: dict) -> None:
    result = CliRunner().invoke(app, ["caption", str(samples["sunset_meadow"].path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["mode"] == "diffsw" and out["captioner"] == "describe"
    assert len(out["differential_captions"]) == len(out["keyframes"]) >= 2
    assert [d["t"] for d in out["differential_captions"]] == [k["t"] for k in out["keyframes"]]
    assert out["caption"]
    assert "describe (model-free" in result.stderr  # the CLI says how to set a real model


def test_caption_fast_mode_has_no_differential_steps(samples: dict) -> None:
    path = str(samples["night_harbour"].path)
    result = CliRunner().invoke(app, ["caption", path, "--mode", "fast", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["mode"] == "fast" and out["differential_captions"] == [] and out["caption"]


def test_caption_of_a_non_video_is_a_clear_rejection(samples: dict) -> None:
    result = CliRunner().invoke(app, ["caption", str(samples["not_a_video"].path), "--json"])
    assert result.exit_code == 2 and "not_video" in result.output


def test_recaption_without_a_model_says_which_setting() -> None:
    result = CliRunner().invoke(app, ["recaption", "a dog on a beach"])
    assert result.exit_code == 2 and "caption.captioner" in result.output


def test_detect_json_shape_for_a_cut(samples: dict) -> None:
    result = CliRunner().invoke(app, ["detect", str(samples["night_harbour"].path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"video", "fps", "frame_count", "duration_s", "transitions", "shots"}
    assert (out["fps"], out["frame_count"], out["duration_s"]) == (25.0, 250, 10.0)
    [cut] = out["transitions"]
    assert cut == {
        "type": "cut",
        "start_frame": 125,
        "end_frame": 125,
        "start_s": 5.0,
        "end_s": 5.0,
        "score": cut["score"],
    }
    assert [(s["start_frame"], s["end_frame"]) for s in out["shots"]] == [(0, 124), (125, 249)]


def test_detect_lists_shots_and_transitions_in_order(samples: dict) -> None:
    result = CliRunner().invoke(app, ["detect", str(samples["night_harbour"].path)])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("  ")]
    assert [(x[0], x[3] if x[0] == "shot" else x[2]) for x in lines] == [
        ("shot", "0-124"),
        ("cut", "125-125"),
        ("shot", "125-249"),
    ]


def test_detect_reads_s3_urls(
    samples: dict, local_s3: object, s3_client: object, bucket: str
) -> None:
    s3_client.upload_file(str(samples["sunset_meadow"].path), bucket, "in/a b.mp4")  # type: ignore[attr-defined]
    url = f"s3://{bucket}/in/a b.mp4"
    args = ["detect", url, "--json", "--endpoint-url", local_s3.endpoint_url]  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["video"] == url
    assert [t["type"] for t in out["transitions"]] == ["gradual"]
