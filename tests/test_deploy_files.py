"""The deployment files agree with each other: no blanket run cancel, and helm serves the
same code locations as workspace.yaml."""

from pathlib import Path

import dagster as dg
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HELM = ROOT / "deploy" / "helm" / "values.yaml"


def _walk(node: object, key: str) -> list[object]:
    """Every value stored under ``key`` anywhere in a parsed YAML tree."""
    if isinstance(node, dict):
        found = [node[key]] if key in node else []
        return found + [v for child in node.values() for v in _walk(child, key)]
    if isinstance(node, list):
        return [v for child in node for v in _walk(child, key)]
    return []


@pytest.mark.parametrize("path", ["dagster.yaml", "deploy/dagster.yaml"])
def test_instance_config_cancels_no_run_for_its_length(path: str) -> None:
    config = yaml.safe_load((ROOT / path).read_text())
    config.pop("storage")  # Postgres or the custom SQLite class: the test instance's own
    with dg.instance_for_test(overrides=config) as instance:
        assert instance.run_monitoring_enabled  # dead run processes are still marked failed
        assert instance.run_monitoring_max_runtime_seconds == 0  # 0: no limit


def test_helm_cancels_no_run_for_its_length() -> None:
    values = yaml.safe_load(HELM.read_text())
    limits = _walk(values, "maxRuntimeSeconds")
    assert limits and all(limit == 0 for limit in limits)


def test_helm_serves_the_workspace_locations_with_alert_secrets_and_config() -> None:
    values = yaml.safe_load(HELM.read_text())
    deployments = values["dagster-user-deployments"]["deployments"]
    modules = {
        d["dagsterApiGrpcArgs"][d["dagsterApiGrpcArgs"].index("--module-name") + 1]
        for d in deployments
    }
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert modules == {entry["python_module"]["module_name"] for entry in workspace["load_from"]}
    for deployment in deployments:
        assert {"name": "platform-alert-secrets"} in deployment["envSecrets"], deployment["name"]
        assert "PLATFORM_CONFIG" in {e["name"] for e in deployment["env"]}, deployment["name"]
