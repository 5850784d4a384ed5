from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import ConfigError, build_config


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
    with pytest.raises(ConfigError, match=r"source\.buckt \(did you mean source\.bucket\?\)"):
        build_config(overrides={"source": {"buckt": "typo"}}, environ={})


def test_a_misspelt_yaml_key_is_one_line_naming_the_file_and_the_closest_setting(
    tmp_path: Path,
) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("source:\n  prefx: raw/\n")
    with pytest.raises(ConfigError) as e:
        build_config(f, environ={})
    assert str(e.value) == (
        f"unknown setting source.prefx (did you mean source.prefix?) (set in {f})"
    )
    with pytest.raises(ConfigError, match=r"source\.partitions.*set by the environment"):
        build_config(environ={"CAPFLOW_SOURCE__PARTITIONS": "zero"})


def test_capflow_variables_that_are_not_settings_warn_and_change_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"CAPFLOW_DEBUG": "1", "CAPFLOW_MODELS": "/models", "CAPFLOW_SOURCE__PREFX": "a/"}
    assert build_config(environ=env) == build_config(environ={})
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "CAPFLOW_DEBUG" in warned and "CAPFLOW_MODELS" in warned
    assert "CAPFLOW_SOURCE__PREFX" in warned and "did you mean source.prefix" in warned


def test_a_captioner_spec_or_mode_that_cannot_work_fails_at_config_time() -> None:
    with pytest.raises(ConfigError, match=r"caption\.captioner.*#<model>"):
        build_config(overrides={"caption": {"captioner": "openai:http://127.0.0.1:9/v1"}})
    with pytest.raises(ConfigError, match=r"caption\.mode.*diffsw"):
        build_config(overrides={"caption": {"mode": "bogus"}}, environ={})


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


def test_cli_flags_not_given_never_hide_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`capflow run` without --prefix must curate the file's prefix, not the whole bucket."""
    from flows.cli import run_config

    for name in [n for n in __import__("os").environ if n.startswith("CAPFLOW_")]:
        monkeypatch.delenv(name)
    f = tmp_path / "run.yaml"
    f.write_text(
        "source: {bucket: yaml-bucket, prefix: raw/}\nlance_uri: /yaml/lance\n"
        "workdir: /yaml/work\ns3: {endpoint_url: 'http://yaml:1'}\nreprocess: true\n"
    )
    cfg = run_config(config=f)
    assert (cfg.source.bucket, cfg.source.prefix, cfg.lance_uri) == (
        "yaml-bucket",
        "raw/",
        "/yaml/lance",
    )
    assert (str(cfg.workdir), cfg.s3.endpoint_url, cfg.reprocess) == (
        "/yaml/work",
        "http://yaml:1",
        True,
    )
    monkeypatch.setenv("CAPFLOW_SOURCE__PREFIX", "env/")
    monkeypatch.setenv("CAPFLOW_LANCE_URI", "/env/lance")
    cfg = run_config(config=f)
    assert (cfg.source.prefix, cfg.lance_uri) == ("env/", "/env/lance")
    cfg = run_config(
        bucket="flag-bucket", prefix="flag/", lance_uri="/flag/lance", config=f,
        endpoint_url="http://flag:2", workdir=tmp_path / "w",
    )  # fmt: skip
    assert (cfg.source.bucket, cfg.source.prefix, cfg.lance_uri) == (
        "flag-bucket",
        "flag/",
        "/flag/lance",
    )
    assert cfg.s3.endpoint_url == "http://flag:2" and cfg.workdir == (tmp_path / "w").resolve()
    assert run_config(prefix="", config=f).source.prefix == ""  # an explicit empty prefix


def test_no_bucket_anywhere_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from flows.cli import run_config

    monkeypatch.delenv("CAPFLOW_SOURCE__BUCKET", raising=False)
    with pytest.raises(typer.BadParameter, match=r"--bucket.*source\.bucket"):
        run_config()


def _leaves(model: type, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], type]]:
    """Every scalar setting of the run config, by path."""
    import dataclasses
    import typing

    from pydantic import BaseModel

    out = []
    if isinstance(model, type) and issubclass(model, BaseModel):
        fields = {n: f.annotation for n, f in model.model_fields.items()}
    elif dataclasses.is_dataclass(model):
        hints = typing.get_type_hints(model)
        fields = {f.name: hints[f.name] for f in dataclasses.fields(model)}
    else:
        return [(prefix, model)]
    for name, annotation in fields.items():
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, __import__("types").UnionType):  # X | None
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            kind = args[0] if len(args) == 1 else None
        else:
            kind = annotation if origin is None else None  # lists, Literals: not scalars
        if kind in (str, int, float, bool) or (
            isinstance(kind, type)
            and (issubclass(kind, BaseModel) or dataclasses.is_dataclass(kind))
        ):
            out += _leaves(kind, (*prefix, name))
    return out


def test_every_setting_follows_defaults_yaml_environment_flags(tmp_path: Path) -> None:
    """For each scalar setting: the file beats the default, the environment the file."""
    import yaml

    from flows.config import RunConfig

    leaves = [(p, t) for p, t in _leaves(RunConfig) if p[-1] not in ("partition", "partitions")]
    assert len(leaves) > 60  # the walk reaches every section
    values = {str: ("from-yaml", "from-env"), int: (7, 9), float: (7.5, 9.5), bool: (True, False)}
    checked = {("caption", "captioner"): ("hf:from-yaml", "hf:from-env"),
               ("caption", "mode"): ("fast", "diffsw")}  # fmt: skip
    for path, kind in leaves:
        in_file, in_env = checked.get(path, values[kind])
        tree: dict = {}
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = in_file
        f = tmp_path / "one.yaml"
        f.write_text(yaml.safe_dump(tree))

        def read(cfg: RunConfig, path: tuple[str, ...] = path) -> object:
            value: object = cfg
            for part in path:
                value = getattr(value, part)
            return value

        assert read(build_config(f, environ={})) == in_file, path
        env = {"CAPFLOW_" + "__".join(path).upper(): str(in_env)}
        assert read(build_config(f, environ=env)) == in_env, path
