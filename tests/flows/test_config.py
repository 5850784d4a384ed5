from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.config import build_config


def test_layers_merge_in_order_defaults_yaml_env_cli(tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("source: {bucket: from-yaml, prefix: p/}\naesthetic: {threshold: 4.0}\n")
    env = {"CAPFLOW_AESTHETIC__THRESHOLD": "4.5", "CAPFLOW_SOURCE__PREFIX": "env/"}
    cfg = build_config(f, {"source": {"prefix": "cli/"}}, env)
    assert cfg.source.bucket == "from-yaml"  # yaml over default
    assert cfg.aesthetic.threshold == 4.5  # env over yaml
    assert cfg.source.prefix == "cli/"  # cli over env
    assert cfg.clips.min_clip_s == 2.0  # defaults stay


def test_unknown_keys_are_errors_not_silently_ignored() -> None:
    with pytest.raises(ValidationError):
        build_config(overrides={"source": {"buckt": "typo"}}, environ={})


def test_config_holds_no_credentials() -> None:
    dumped = build_config(environ={"AWS_SECRET_ACCESS_KEY": "s3cr3t"}).model_dump_json()
    assert "s3cr3t" not in dumped and "secret" not in dumped.lower()


def test_lance_on_s3_gets_endpoint_options() -> None:
    cfg = build_config(
        overrides={"lance_uri": "s3://b/db", "s3": {"endpoint_url": "http://127.0.0.1:9000"}},
        environ={},
    )
    assert cfg.lance_storage_options() == {
        "region": "us-east-1",
        "endpoint": "http://127.0.0.1:9000",
        "virtual_hosted_style_request": "false",
        "allow_http": "true",
    }
    assert build_config(environ={}).lance_storage_options() is None
