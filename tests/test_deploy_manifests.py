"""The deployment files for users who outgrow one machine, checked with the validators that exist as packages:
deploy/compose.yaml against the Compose Specification's JSON schema (vendored by check-jsonschema), the
Kubernetes manifests against Kubernetes 1.31's schemas in strict mode (kubernetes-validate), and what a schema
cannot see: every CALLPILOT_* variable is a real setting, the probes hit routes the app serves, the grace periods
outlast the drain, the PodDisruptionBudget and the Service select the Deployment's pods, the Dockerfile copies
folders that exist. Nothing here is run against Docker or a cluster (neither is on this machine: README)."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from callpilot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.31.0"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def setting_of(variable: str) -> str:
    return variable.removeprefix("CALLPILOT_").lower()


def seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)s", str(text))
    assert match, f"expected a duration like 45s, got {text!r}"
    return float(match.group(1))


def test_compose_follows_the_compose_specification() -> None:
    schema = json.loads(resources.files("check_jsonschema").joinpath(
        "builtin_schemas/vendor/compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.validate(compose(), schema)  # raises with the path of what is wrong
    broken = {**compose(), "services": {"x": {"image": "redis", "ports": "8080"}}}  # the validator does check
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_compose_runs_two_processes_on_one_redis_and_one_postgresql_and_drains_before_the_kill() -> None:
    services = compose()["services"]
    callpilots = {name: s for name, s in services.items() if name.startswith("callpilot")}
    assert len(callpilots) == 2 and {"redis", "postgres"} <= set(services)
    fields = set(Settings.model_fields)
    for name, service in callpilots.items():
        env = service["environment"]
        unknown = [v for v in env if v.startswith("CALLPILOT_") and setting_of(v) not in fields]
        assert not unknown, f"{name}: no such settings {unknown}"
        assert env["CALLPILOT_REDIS_URL"].startswith("redis://redis:")
        assert "@postgres:5432/" in env["CALLPILOT_DATABASE_URL"]
        assert seconds(service["stop_grace_period"]) > float(env["CALLPILOT_SHUTDOWN_DRAIN_S"])
        assert "/health" in " ".join(service["healthcheck"]["test"])
        assert "CALLPILOT_HANDOFF" not in env  # the agent directory: in Redis ("auto" with a redis_url)
        shared = env["CALLPILOT_RECORDINGS_DIR"]
        assert any(shared.startswith(v.split(":")[1]) for v in service["volumes"] if v.startswith("shared:"))
    assert "--appendonly" in services["redis"]["command"]


def test_the_kubernetes_manifests_are_valid_for_kubernetes_1_31_in_strict_mode() -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    typo = json.loads(json.dumps(deployment))
    typo["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}  # strict mode refuses unknown fields
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def test_the_deployment_probes_drains_and_is_selected_by_its_budget_and_service(tmp_path: Path) -> None:
    from callpilot.app import create_app

    docs = manifests()
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "callpilot")
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    labels = pod["metadata"]["labels"]
    for kind in ("PodDisruptionBudget", "Service"):
        found = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == "callpilot")
        selector = found["spec"]["selector"]
        wanted = selector.get("matchLabels", selector)
        assert wanted.items() <= labels.items(), f"the {kind} does not select the pods"
    budget = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]  # a drain can move one pod at a time
    drain = float(config["CALLPILOT_SHUTDOWN_DRAIN_S"]) + container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > drain
    unknown = [v for v in config if v.startswith("CALLPILOT_") and setting_of(v) not in Settings.model_fields]
    assert not unknown, f"no such settings {unknown}"
    ports = {p["name"] for p in container["ports"]}
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "callpilot")
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    app = create_app(Settings(data_dir=ROOT / "nlu_data", state_dir=tmp_path, audiosocket_port=0))
    routes = set(app.openapi()["paths"])  # the routers' routes (an included router is one entry of app.routes)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in routes, probe


def test_the_dockerfile_copies_what_exists_and_runs_callpilot() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        for source in line.split()[:-1]:  # the last word is the destination
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
    assert 'CMD ["callpilot", "run"]' in text and "torch==2.13.0" in text
