"""deploy/: every file parses, passes its own tool's check and its schema, and they agree.

Prometheus' config and rules go through ``promtool``, Alertmanager's through
``amtool`` (both from the Debian packages the test setup installs), the
Kubernetes manifests through ``kubernetes-validate`` (the Kubernetes JSON
schemas, bundled: no cluster, no network) and the compose file through the
compose-spec schema (bundled with ``check-jsonschema``). Then the
cross-references: the port the API listens on is the one every other file
names, the webhook and discovery paths are the server's routes, the secrets
mounted are the ones the configs read, each critical alert has a policy
that acts on it, and the dashboard asks only for series that exist.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from assure.api.app import core_routes
from assure.cli.probe import probe as probe_command
from assure.simulation.exporter import KPIS
from policy.loader import load_policies
from policy.schema import AlertTrigger
from tests.metric_names import platform_metric_names

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S_VERSION = "1.30.0"


def load(path: str) -> Any:
    return yaml.safe_load((DEPLOY / path).read_text())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_every_yaml_and_json_file_parses() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml", ".json")]
    assert len(files) >= 10
    for path in files:
        text = path.read_text()
        documents = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
        assert documents and all(d is not None for d in documents), path


def test_promtool_accepts_the_prometheus_config_and_rules(tmp_path: Path) -> None:
    # The config reads a token file, which a deployment provides: give it one.
    shutil.copytree(DEPLOY / "prometheus", tmp_path / "prometheus")
    (tmp_path / "prometheus" / "secrets").mkdir()
    (tmp_path / "prometheus" / "secrets" / "nfva-viewer-token").write_text("nfva_x\n")
    config = run("promtool", "check", "config", str(tmp_path / "prometheus" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout + config.stderr
    rules = run(
        "promtool", "check", "rules", *map(str, (DEPLOY / "prometheus" / "rules").glob("*.yml"))
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_amtool_accepts_the_alertmanager_config() -> None:
    checked = run("amtool", "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_broken_config_is_caught_by_the_tools(tmp_path: Path) -> None:
    bad = tmp_path / "alertmanager.yml"
    bad.write_text("route: {receiver: nowhere}\nreceivers: []\n")
    assert run("amtool", "check-config", str(bad)).returncode != 0


def kubernetes_documents() -> list[dict[str, Any]]:
    return [d for p in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text())]  # fmt: skip


def test_the_kubernetes_manifests_match_the_kubernetes_schemas() -> None:
    documents = kubernetes_documents()
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    broken = json.loads(json.dumps(documents[0]))
    broken["metadata"]["nmae"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_compose_file_matches_the_compose_spec() -> None:
    binary = Path(sys.executable).parent / "check-jsonschema"
    checked = run(str(binary), "--builtin-schema", "vendor.compose-spec",
                  str(DEPLOY / "docker-compose.yml"))  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_there_is_a_deployment_per_role_and_each_needs_what_exists() -> None:
    from assure.platform import ALL_ROLES

    documents = kubernetes_documents()
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for d in documents:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind["Deployment"]
    roles = {
        d["spec"]["template"]["spec"]["containers"][0]["args"][-1]: d for d in deployments.values()
    }
    assert set(roles) == set(ALL_ROLES)
    for role, deployment in roles.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["run", "--role", role]
        assert (
            container["resources"]["requests"]["cpu"]
            and container["resources"]["requests"]["memory"]
        )
        for env in container["env"]:
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in by_kind["Secret"][ref["name"]]["stringData"]
        for volume in pod["volumes"]:
            assert volume["configMap"]["name"] in by_kind["ConfigMap"]
    api = roles["api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for role, deployment in roles.items():
        if role == "api":
            continue
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        live = container["livenessProbe"]["exec"]["command"]
        ready = container["readinessProbe"]["exec"]["command"]
        assert live == ["nfv-assure", "probe", role], role
        assert ready == ["nfv-assure", "probe", role, "--ready"], role
        # The command takes these arguments (tests/test_probe.py runs it).
        with probe_command.make_context("probe", ready[2:]) as parsed:
            assert parsed.params == {"role": role, "ready": True}
    settings = yaml.safe_load(by_kind["ConfigMap"]["nfv-assure-config"]["data"]["assure.yaml"])
    port = settings["api"]["port"]
    assert api["ports"][0]["containerPort"] == port
    service = by_kind["Service"]["nfv-assure"]
    assert (
        service["spec"]["selector"].items()
        <= roles["api"]["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"][0]["port"] == port


def test_the_files_agree_on_ports_paths_secrets_and_alerts() -> None:
    paths = {route.path for route in core_routes()}
    compose = load("docker-compose.yml")
    prometheus = load("prometheus/prometheus.yml")
    alertmanager = load("alertmanager/alertmanager.yml")
    port = int(compose["services"]["nfv-assure"]["ports"][0].split(":")[1])
    assert compose["services"]["nfv-assure"]["command"][-1] == str(port)
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["nfv-assure"]["static_configs"][0]["targets"] == [f"nfv-assure:{port}"]
    (discovery,) = jobs["vnfc"]["http_sd_configs"]
    assert discovery["url"].startswith(f"http://nfv-assure:{port}/")
    assert discovery["url"].split(str(port), 1)[1] in paths
    (webhook,) = alertmanager["receivers"][0]["webhook_configs"]
    assert webhook["url"] == f"http://nfv-assure:{port}/api/v1/alerts"
    assert "/api/v1/alerts" in paths
    # The token files the configs read are the ones compose mounts.
    mounts = " ".join(v for s in compose["services"].values() for v in s.get("volumes", []))
    assert "/etc/prometheus/" + discovery["authorization"]["credentials_file"] in mounts
    assert webhook["http_config"]["basic_auth"]["password_file"] in mounts
    # Every critical alert rule has a policy that acts on it.
    rules = [r for p in (DEPLOY / "prometheus" / "rules").glob("*.yml")
             for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]]  # fmt: skip
    loaded = load_policies(DEPLOY / "policies")
    assert not loaded.problems, loaded.problems
    triggers = {
        p.spec.trigger.alert for p in loaded.policies if isinstance(p.spec.trigger, AlertTrigger)
    }
    critical = {r["alert"] for r in rules if r["labels"].get("severity") == "critical"}
    assert critical and critical <= triggers
    # Alertmanager groups by the labels that name a target.
    assert {"vnfc_id", "vnf_instance_id", "host"} <= set(alertmanager["route"]["group_by"])


def test_the_dashboard_asks_only_for_series_that_exist() -> None:

    board = json.loads((DEPLOY / "grafana" / "dashboards" / "nfv-assure.json").read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    names = {name for e in exprs for name in re.findall(r"\b(nfva_[a-z_]+|vnf_[a-z_]+|up)\b", e)}

    known = platform_metric_names() | set(KPIS) | {"up"}
    assert names and names <= known, names - known
    assert {
        "nfva_loop_latency_seconds_bucket",
        "nfva_decisions_total",
        "nfva_violations_open",
    } <= names
    datasource = load("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    assert {p["datasource"]["uid"] for p in board["panels"]} == {datasource["uid"]}
