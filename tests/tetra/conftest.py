"""Helpers to run Tetra jobs with a chosen provider against a test instance."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from platform_core.backfill import run_partition_range
from platform_core.notifier import Notifier
from tetra_assets.location import LOCATION
from tetra_assets.resources import MarketDataProvider
from tetra_assets.science.ohlcv import load_bundled


def run_job(
    instance: dg.DagsterInstance,
    job: str,
    first: str,
    last: str,
    provider: MarketDataProvider,
    notifier: Notifier | None = None,
) -> dg.ExecuteInProcessResult:
    defs = LOCATION.definitions(provider=provider, **({"notifier": notifier} if notifier else {}))
    return run_partition_range(defs.resolve_job_def(job), instance, first, last)


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Everything the step failures of a run say (messages, causes, Failure descriptions)."""
    return "\n".join(str(e.step_failure_data) for e in result.all_events if e.is_step_failure)


def tetra(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The ``tetra`` CLI in a subprocess with exactly ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "tetra_assets.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def event_count(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> int:
    return len(instance.all_logs(run_id, of_type=kind))


def write_symbol_csv(directory: Path, symbol: str, first: str, last: str) -> Path:
    """A real price file: the bundled S&P 500 bars of [first, last] in the documented columns."""
    bars = load_bundled(["SP500"], first, last).drop(columns="symbol")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{symbol}.csv"
    bars.assign(date=bars["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return path


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prices"
    write_symbol_csv(directory, "ACME", "2018-01-02", "2018-01-12")
    return directory


def stored(data_root: Path, asset: str, partition: str) -> pd.DataFrame:
    return pd.read_feather(data_root / "tetra" / asset / f"{partition}.arrow")
