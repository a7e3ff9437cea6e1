"""ECOD fixtures: one data root + instance per test module, with the demo library built once."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ecod_assets.cli import main
from platform_core.cli import instance
from tests.support import isolated_home


@pytest.fixture(scope="module")
def ecod_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$DAGSTER_HOME`` and ``$PLATFORM_DATA_ROOT`` under one folder; demo library built."""
    with isolated_home(tmp_path_factory.mktemp("ecod"), ECOD_INBOX_SETTLE_SECONDS="0") as root:
        assert main(["reference"]) == 0
        yield root


@pytest.fixture
def ecod_instance(ecod_home: Path) -> Iterator[dg.DagsterInstance]:
    yield instance()
