"""Shared fixtures: an isolated data root and Dagster instance per test."""

import os

# Read by tetra_assets at import: keep retry back-off short in tests (production: 30 s).
os.environ["TETRA_RETRY_DELAY_SECONDS"] = "0.05"
# A developer's platform config must not change what the tests see (a test sets its own).
os.environ.pop("PLATFORM_CONFIG", None)

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from platform_core.cli import scratch_instance


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/production is marked ``production`` (README: test tiers)."""
    for item in items:
        if "production" in item.path.parts:
            item.add_marker(pytest.mark.production)


@pytest.fixture(autouse=True)
def no_platform_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without a platform config, and what a test sets (``use_file`` or a
    CLI's ``--platform-config`` writes ``$PLATFORM_CONFIG``) is undone after it: setenv
    records the variable's absence, which delenv of an absent variable would not."""
    monkeypatch.setenv("PLATFORM_CONFIG", "")


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv("PLATFORM_DATA_ROOT", str(root))
    return root


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_root: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    """A throw-away instance with the repository's storage (batched SQLite event log)."""
    with scratch_instance(str(dagster_home)) as inst:
        yield inst
