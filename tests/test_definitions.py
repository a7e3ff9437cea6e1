"""Every code location in workspace.yaml loads, dg finds all of them, and each asset graph is
pinned.

An intended graph change: run ``UPDATE_ASSET_GRAPHS=1 pytest tests/test_definitions.py`` and
review the diff of tests/asset_graphs.json.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from platform_core import workspace
from platform_core.location import Location

ROOT = Path(__file__).resolve().parent.parent
PINNED = Path(__file__).with_name("asset_graphs.json")


def locations() -> dict[str, str]:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    return {
        entry["python_module"]["location_name"]: entry["python_module"]["module_name"]
        for entry in workspace["load_from"]
    }


def describe(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        start = partitions_def.start.date()
        return f"time:{partitions_def.cron_schedule}:{partitions_def.timezone}:{start}"
    return type(partitions_def).__name__


def snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": describe(node.partitions_def),
            "checks": sorted(c.name for c in node.check_keys),
            "mappings": {
                parent.to_user_string(): repr(mapping)
                for parent, mapping in sorted(node.partition_mappings.items())
            },
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.jobs or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
    }


@pytest.mark.parametrize("location", sorted(locations()))
def test_location_loads_and_graph_is_pinned(location: str) -> None:
    module = importlib.import_module(locations()[location])
    dg.Definitions.validate_loadable(module.defs)
    current = snapshot(module.defs)
    pinned = json.loads(PINNED.read_text()) if PINNED.exists() else {}
    if os.environ.get("UPDATE_ASSET_GRAPHS"):
        pinned[location] = current
        PINNED.write_text(json.dumps(pinned, indent=2, sort_keys=True) + "\n")
    assert current == pinned[location]


@pytest.mark.parametrize("location", ["cardio", "ecod", "imaging", "tetra"])
def test_python_defs_package_loads_as_dg_loads_its_folder(location: str) -> None:
    """A Python ``defs/`` package is collected module by module (a preview API, for start-up
    time): it must give exactly what dg's own folder loader gives."""
    spec = importlib.import_module(f"{location}_assets.location").LOCATION
    folder = Path(importlib.import_module(spec.package).__file__).parent
    resources = dg.Definitions(resources=spec.definitions().resources)  # what the kit adds
    ours = dg.Definitions.merge(spec.load_defs_folder(), resources)
    theirs = dg.Definitions.merge(dg.load_from_defs_folder(path_within_project=folder), resources)
    assert snapshot(ours) == snapshot(theirs)
    assert ours.resolve_asset_graph().get_all_asset_keys()  # not two empty loads


def test_a_component_in_a_python_defs_package_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module loader would silently skip a component YAML: loading fails naming it."""
    defs = tmp_path / "stray_assets" / "defs"
    (defs / "extra").mkdir(parents=True)
    (defs.parent / "__init__.py").write_text("")
    (defs / "__init__.py").write_text("")
    (defs / "extra" / "defs.yaml").write_text("type: dagster.DefinitionsComponent\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"extra/defs.yaml: a component"):
        Location(name="stray", partitions=None, item="item").load_defs_folder()


def test_schedules_and_sensors_run_by_default() -> None:
    for module_name in locations().values():
        defs = importlib.import_module(module_name).defs
        for item in [*(defs.schedules or []), *(defs.sensors or [])]:
            assert item.default_status.value == "RUNNING", item.name


WARNING_PROBE = """
import importlib, json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.warn("probe sentinel")  # proves the capture works when the location warns of nothing
    defs = importlib.import_module(sys.argv[1]).defs
    defs.resolve_asset_graph(); defs.resolve_all_job_defs()
print(json.dumps([f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]))
"""
OUTDATED = ("DeprecationWarning", "SupersessionWarning", "FutureWarning")


@pytest.mark.parametrize("location", sorted(locations()))
def test_location_loads_without_deprecated_or_superseded_apis(location: str) -> None:
    """A fresh interpreter imports the location with every warning shown: none may say that an
    API it uses is deprecated or superseded (beta and preview notices are allowed)."""
    probe = subprocess.run(
        [sys.executable, "-c", WARNING_PROBE, locations()[location]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    caught = json.loads(probe.stdout.splitlines()[-1])
    assert any("probe sentinel" in w for w in caught), "the probe no longer observes warnings"
    assert not [w for w in caught if w.startswith(OUTDATED)], caught


def test_workspace_yaml_is_generated_from_the_dg_workspace() -> None:
    """dagster dev and the daemon read workspace.yaml; dg reads dg.toml: one from the other."""
    done = subprocess.run(
        [sys.executable, "-m", "platform_core.workspace", "--check"], cwd=ROOT, check=False
    )
    assert done.returncode == 0, "workspace.yaml is stale: python -m platform_core.workspace"
    listed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "dg"), "list", "projects"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    projects = [Path(p).name for p in listed.stdout.split()]
    assert sorted(projects) == sorted(locations()) == sorted(workspace.projects())


def test_dg_check_defs_passes_for_every_location(tmp_path: Path) -> None:
    """``dg check defs`` over the workspace loads all five locations, each in a code server of
    its own, from the repository's one environment."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "dg"), "check", "defs", "--use-active-venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "VIRTUAL_ENV": str(ROOT / ".venv"), "DAGSTER_HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


@pytest.mark.parametrize("location", sorted(locations()))
def test_alert_and_health_sensors_evaluate_on_the_real_definitions(
    location: str, instance: dg.DagsterInstance
) -> None:
    """The sensors the daemon ticks, on the location's own Definitions (its asset graph must
    resolve in the sensor, where no resources are bound): no tick raises."""
    defs = importlib.import_module(locations()[location]).defs
    repo = defs.get_repository_def()
    for name in (f"{location}_alert_rules", f"{location}_health"):
        sensor = repo.get_sensor_def(name)
        resources = {"notifier": defs.resources["notifier"]} if "alert" in name else None
        with dg.build_sensor_context(
            instance=instance, repository_def=repo, resources=resources
        ) as context:
            result = sensor(context)
        assert isinstance(result, dg.SkipReason | dg.SensorResult), (name, result)
