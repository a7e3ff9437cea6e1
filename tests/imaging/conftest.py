"""Imaging fixtures: one data root + instance per test module, small synthetic plates."""

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from imaging_assets.demo import write_demo_plate
from imaging_assets.science.synthetic import TileGrid
from platform_core.cli import instance

# 3 x 3 sites of 384 px, 10 % overlap (the run's default), 2 channels
TEST_GRID = TileGrid(tile=384)


@pytest.fixture(scope="module")
def hcs_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$DAGSTER_HOME`` and ``$PLATFORM_DATA_ROOT`` under one folder."""
    root = tmp_path_factory.mktemp("hcs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "home"))
        patch.setenv("PLATFORM_DATA_ROOT", str(root / "data"))
        patch.setenv("IMAGING_INBOX_SETTLE_SECONDS", "0")
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
