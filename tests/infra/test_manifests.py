"""infra/ and prefect.yaml: they parse, and everything they name exists and agrees."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from flows.config import build_config
from flows.defaults import DEFAULT_CRON, DEFAULT_POOL
from flows.deployments import (
    BACKFILL,
    BACKFILL_ENTRYPOINT,
    EXPORT,
    EXPORT_ENTRYPOINT,
    INCREMENTAL,
    INCREMENTAL_ENTRYPOINT,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _flow_at(entrypoint: str) -> Any:
    path, _, name = entrypoint.partition(":")
    assert (ROOT / path).is_file(), path
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def test_prefect_yaml_matches_capflow_deploy() -> None:
    from prefect import Flow

    spec = _yaml(ROOT / "prefect.yaml")
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == {INCREMENTAL, BACKFILL, EXPORT}
    assert deployments[EXPORT]["entrypoint"] == EXPORT_ENTRYPOINT
    assert deployments[INCREMENTAL]["entrypoint"] == INCREMENTAL_ENTRYPOINT
    assert deployments[BACKFILL]["entrypoint"] == BACKFILL_ENTRYPOINT
    for d in deployments.values():
        flow = _flow_at(d["entrypoint"])
        assert isinstance(flow, Flow)
        assert d["work_pool"]["name"] == DEFAULT_POOL
        assert d["concurrency_limit"] == 1
        assert set(d["parameters"]) <= set(flow.parameters.properties)
    [schedule] = deployments[INCREMENTAL]["schedules"]
    assert schedule["cron"] == DEFAULT_CRON and schedule["timezone"] == "UTC"
    assert "schedules" not in deployments[BACKFILL]


def _dockerfile() -> list[list[str]]:
    """Instructions as [KEYWORD, args...], continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln.split() for ln in lines if ln and not ln.startswith("#")]


def test_dockerfile_copies_every_package_and_only_what_exists() -> None:
    instructions = _dockerfile()
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("nvidia/cuda:")
    copied: set[str] = set()
    for ins in instructions:
        if ins[0] == "COPY":
            for src in ins[1:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                copied.add(src)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {p.split(".")[0] for p in packages["packages"]} <= copied
    run = " ".join(" ".join(i) for i in instructions if i[0] == "RUN")
    assert "ffmpeg" in run and "'.[dask,ray]'" in run
    cmd = json.loads(" ".join(next(i for i in instructions if i[0] == "CMD")[1:]))
    assert cmd[:3] == ["prefect", "worker", "start"]
    assert cmd[cmd.index("--pool") + 1] == DEFAULT_POOL
    assert "SECRET" not in (INFRA / "Dockerfile").read_text()


def test_compose_services_refer_to_each_other_and_bind_loopback() -> None:
    compose = _yaml(INFRA / "docker-compose.yml")
    services = compose["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown {dep}"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (INFRA / source).exists(), f"{name} mounts missing {source}"
            elif not source.startswith("$"):
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
    worker = services["worker"]
    assert (INFRA / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()
    env = worker["environment"]
    api = re.fullmatch(r"http://([\w-]+):(\d+)/api", env["PREFECT_API_URL"])
    assert api and api.group(1) in services
    assert f"--port {api.group(2)}" in " ".join(services[api.group(1)]["command"])
    s3 = re.fullmatch(r"http://([\w-]+):(\d+)", env["CAPFLOW_S3__ENDPOINT_URL"])
    assert s3 and s3.group(1) in services and "-s3" in services[s3.group(1)]["command"]
    db_url = services["prefect-server"]["environment"]["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert "@postgres:5432/prefect" in db_url and "postgres" in services
    # The worker's CAPFLOW_* settings are real config fields.
    capflow_env = {k: v for k, v in env.items() if k.startswith("CAPFLOW_")}
    config = build_config(environ=capflow_env)
    assert config.s3.endpoint_url == env["CAPFLOW_S3__ENDPOINT_URL"]
    assert config.lance_uri == env["CAPFLOW_LANCE_URI"]


def test_compose_secrets_come_from_the_env_file_only() -> None:
    text = (INFRA / "docker-compose.yml").read_text()
    referenced = set(re.findall(r"\$\{(\w+)", text))
    declared = {
        line.split("=")[0]
        for line in (INFRA / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert referenced <= declared, referenced - declared
    for key in ("POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY"):
        assert re.search(rf"{key}: \$\{{{key}", text), f"{key} must come from .env"
    assert ".env" in (ROOT / ".gitignore").read_text()


def test_kubernetes_job_template_is_valid_and_asks_for_a_gpu() -> None:
    from prefect.server.schemas.actions import validate_base_job_template

    template = json.loads((INFRA / "k8s" / "work-pool-job-template.json").read_text())
    validate_base_job_template(template)  # Prefect's own check: placeholders are declared
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", json.dumps(template["job_configuration"])))
    declared = set(template["variables"]["properties"])
    assert declared == used, f"declared but unused: {declared - used}"
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpus }}"
    assert template["variables"]["properties"]["gpus"]["default"] >= 1


def test_every_manifest_runs_the_same_image() -> None:
    compose = _yaml(INFRA / "docker-compose.yml")
    image = compose["services"]["worker"]["image"]
    template = json.loads((INFRA / "k8s" / "work-pool-job-template.json").read_text())
    assert template["variables"]["properties"]["image"]["default"] == image
    ray = _yaml(INFRA / "ray" / "raycluster.yaml")
    assert ray["kind"] == "RayCluster"
    head = ray["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    groups = ray["spec"]["workerGroupSpecs"]
    assert [c["image"] for c in head] == [image]
    assert all(c["image"] == image for g in groups for c in g["template"]["spec"]["containers"])
    gpu_groups = [
        g
        for g in groups
        if g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")
    ]
    assert gpu_groups and all(g["rayStartParams"]["num-gpus"] == "1" for g in gpu_groups)
    import ray as ray_pkg  # the manifest's Ray is the one the tests ran

    assert ray["spec"]["rayVersion"] == ray_pkg.__version__
