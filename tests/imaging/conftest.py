"""Imaging fixtures: one data root + instance per test module, small synthetic plates."""

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from imaging_assets.demo import write_demo_plate
from imaging_assets.science.synthetic import TileGrid
from platform_core.cli import instance
from tests.support import isolated_home

# 3 x 3 sites of 384 px, 10 % overlap (the run's default), 2 channels
TEST_GRID = TileGrid(tile=384)


@pytest.fixture(scope="module")
def hcs_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$DAGSTER_HOME`` and ``$PLATFORM_DATA_ROOT`` under one folder."""
    with isolated_home(tmp_path_factory.mktemp("hcs"), IMAGING_INBOX_SETTLE_SECONDS="0") as root:
        yield root


@pytest.fixture
def hcs_instance(hcs_home: Path) -> Iterator[dg.DagsterInstance]:
    yield instance()


@pytest.fixture(scope="module")
def make_plate(hcs_home: Path) -> Callable[..., Path]:
    """Write a demo plate under the module's folder: make_plate(name, microscope=..., wells=...)."""

    def make(name: str, microscope: str = "imagexpress", wells: int = 3, seed: int = 0) -> Path:
        return write_demo_plate(hcs_home / "plates", name, microscope, wells, TEST_GRID, 2, seed)

    return make
