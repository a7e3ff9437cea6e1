"""Helpers shared by the tests of every location."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest


@contextmanager
def isolated_home(root: Path, **env: str) -> Iterator[Path]:
    """``$DAGSTER_HOME`` (root/home) and ``$PLATFORM_DATA_ROOT`` (root/data) under ``root``,
    plus ``env``, for the duration of the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "home"))
        patch.setenv("PLATFORM_DATA_ROOT", str(root / "data"))
        for name, value in env.items():
            patch.setenv(name, value)
        yield root


def latest_metadata(inst: dg.DagsterInstance, asset: str, partition: str) -> dict:
    """The metadata of the latest materialization of one asset partition."""
    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"{asset} has no materialization for {partition}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
