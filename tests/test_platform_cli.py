"""``asset-platform`` (health and config over every location of workspace.yaml) and the
``health`` verb and ``--platform-config`` option every location CLI has."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from platform_core import platform_cli, workspace
from platform_core.errors import CliError
from platform_core.platform_config import CONFIG_ENV
from tetra_assets import cli as tetra_cli

ROOT = Path(__file__).resolve().parent.parent
RELAXED = "health:\n  max_memory_used_fraction: 1.0\n"  # a busy test box is not the subject


def test_a_bad_key_exits_2_naming_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "platform.yaml"
    bad.write_text("health:\n  interval_seconds: 60\n  min_free_disk: 5\n")
    for argv in (["config", "check"], ["health"]):
        with pytest.raises(SystemExit) as exit_:
            platform_cli.main([*argv, "--platform-config", str(bad)])
        assert exit_.value.code == 2
        error = capsys.readouterr().err
        assert f"{bad} line 3" in error and "min_free_disk" in error, error


def test_config_show_gives_each_locations_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "platform.yaml"
    file.write_text(RELAXED + "locations:\n  ecod:\n    blast_batch_size: 7\n")
    assert platform_cli.main(["config", "show", "--json", "--platform-config", str(file)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == set(workspace.projects())
    assert shown["ecod"]["settings"] == {"blast_batch_size": 7}
    assert shown["tetra"]["file"] == str(file) and shown["tetra"]["settings"] == {}


def test_a_run_through_the_daemon_refuses_another_config_file(tmp_path: Path) -> None:
    args = type("Args", (), {"here": False, "platform_config": str(tmp_path / "mine.yaml")})
    with pytest.raises(CliError, match="the daemon uses its own file; use --here"):
        platform_cli.refuse_other_config(args, tmp_path / "daemons.yaml")  # type: ignore[arg-type]
    platform_cli.refuse_other_config(args, tmp_path / "mine.yaml")  # type: ignore[arg-type]
    args.here = True
    platform_cli.refuse_other_config(args, tmp_path / "daemons.yaml")  # type: ignore[arg-type]


def test_location_health_verb_and_its_platform_config(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relaxed, strict = tmp_path / "relaxed.yaml", tmp_path / "strict.yaml"
    relaxed.write_text(RELAXED)
    strict.write_text(RELAXED + "  min_free_disk_gb: 1000000000\n")  # more than any disk
    monkeypatch.setenv(CONFIG_ENV, str(relaxed))
    assert tetra_cli.main(["health", "--json"]) == 0  # never run: nothing failed or stale
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] and report["location"] == "tetra"
    assert {"database", "disk_space", "memory", "daemon_heartbeat", "webserver"} == set(
        report["system"]
    )
    assert report["pipelines"]["data"]["status"] == "never run"
    assert tetra_cli.main(["health", "--json", "--platform-config", str(strict)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["system"]["disk_space"]["status"] == "fail" and not report["healthy"]
    assert tetra_cli.main(["status", "--platform-config", str(relaxed)]) == 0  # every verb


@pytest.mark.slow
def test_asset_platform_health_over_the_five_locations(tmp_path: Path) -> None:
    """The console script, as an operator runs it (slow: it loads all five locations)."""
    file = tmp_path / "platform.yaml"
    file.write_text(RELAXED)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), CONFIG_ENV: str(file)}
    env["PLATFORM_DATA_ROOT"] = str(tmp_path / "data")
    script = Path(sys.executable).parent / "asset-platform"
    done = subprocess.run(
        [str(script), "health", "--json"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["healthy"] and set(report["locations"]) == set(workspace.projects())
    assert all(loc == {"healthy": True} for loc in report["locations"].values())
    assert {key.split("/")[0] for key in report["pipelines"]} == set(workspace.projects())
    assert set(report["system"]) >= {"database", "disk_space", "memory", "webserver"}
