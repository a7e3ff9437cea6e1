"""Bad input: a clear error naming file/row/column, and earlier materializations intact."""

import os
from pathlib import Path

import dagster as dg
import pytest

from tests.support import failure_messages
from tests.tetra.conftest import event_count, failure_text, run_job, stored, tetra
from tetra_assets.location import LOCATION
from tetra_assets.resources import MarketDataProvider
from tetra_assets.science.ohlcv import DataFormatError, load_csv_directory, read_symbol_csv

HEADER = "date,open,high,low,close,volume\n"


def write(tmp_path: Path, text: str, name: str = "ACME.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("date,open,high,close\n2018-01-02,1,2,1.5\n", r"missing column\(s\) low, volume"),
        (HEADER + "2018-01-02,1,2,0.5,abc,100\n", r"row 2, column close: 'abc' is not a number"),
        (
            HEADER + "2018-01-02,1,2,0.5,1,100\n2018-01-03,1,2,0.5,1,100\n2018-01-02,1,2,0.5,1,9\n",
            r"duplicate date 2018-01-02 at rows \[2, 4\]",
        ),
        (
            HEADER + "2018-01-02,1,2,0.5,1,100\n2018-01-03,1,2,-0.5,1,100\n",
            r"row 3, column low: price -0.5 is not positive",
        ),
        (HEADER + "2018-01-02,1,0.5,2,1,100\n", r"row 2: high 0.5 is below low"),
        (
            HEADER + "02/01/2018,1,2,0.5,1,100\n",
            r"row 2, column date: '02/01/2018' is not a YYYY-MM-DD date",
        ),
        ("", r"file is empty"),
        (HEADER, r"header only, no data rows"),
    ],
    ids=[
        "missing-columns",
        "non-numeric",
        "duplicate-dates",
        "negative-price",
        "high-below-low",
        "bad-date",
        "empty-file",
        "header-only",
    ],
)
def test_csv_errors_name_file_row_and_column(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(DataFormatError, match=message) as error:
        read_symbol_csv(path, "ACME")
    assert str(path) in str(error.value)


def test_unknown_symbol_lists_what_exists(tmp_path: Path) -> None:
    write(tmp_path, HEADER + "2018-01-02,1,2,0.5,1,100\n")
    with pytest.raises(DataFormatError, match=r"unknown symbol\(s\) NOPE .* available: ACME"):
        load_csv_directory(tmp_path, ["NOPE"], "2018-01-01", "2018-01-31")


def test_binary_garbage_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ACME.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataFormatError, match=str(path)):
        read_symbol_csv(path, "ACME")


def test_bad_csv_fails_the_run_without_retry_and_keeps_earlier_data(
    instance: dg.DagsterInstance, data_root: Path, csv_dir: Path
) -> None:
    provider = MarketDataProvider(kind="csv", csv_dir=str(csv_dir))
    good = run_job(instance, "tetra_data", "2018-01-02", "2018-01-05", provider)
    assert good.success
    before = (data_root / "tetra/market_data/2018-01-03.arrow").read_bytes()

    path = csv_dir / "ACME.csv"
    path.write_text(path.read_text().replace("2018-01-03,", "2018-01-03,-", 1))
    bad = run_job(instance, "tetra_data", "2018-01-02", "2018-01-05", provider)
    assert not bad.success
    assert f"{path}: row 3, column open: price -" in failure_text(bad)
    assert event_count(instance, bad.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == 0
    assert (data_root / "tetra/market_data/2018-01-03.arrow").read_bytes() == before
    assert stored(data_root, "market_data", "2018-01-03")["open"].iloc[0] > 0
    assert not list((data_root / "tetra/market_data").glob(".*tmp"))


def test_provider_outage_retries_with_backoff_then_uses_cached_data(
    instance: dg.DagsterInstance, data_root: Path, csv_dir: Path
) -> None:
    provider = MarketDataProvider(kind="csv", csv_dir=str(csv_dir))
    assert run_job(instance, "tetra_data", "2018-01-08", "2018-01-10", provider).success
    before = stored(data_root, "market_data", "2018-01-09")

    csv_dir.rename(csv_dir.with_name("offline"))
    result = run_job(instance, "tetra_data", "2018-01-08", "2018-01-10", provider)
    assert result.success
    assert event_count(instance, result.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) >= 3
    meta = instance.get_latest_materialization_event(dg.AssetKey("market_data"))
    metadata = meta.asset_materialization.metadata
    assert metadata["fallback"].value is True
    assert metadata["fallback_from"].value == "cached 2018-01-10"
    assert "is not reachable" in metadata["fallback_error"].value
    assert stored(data_root, "market_data", "2018-01-09").equals(before)


def test_provider_outage_without_cache_fails_clearly(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    provider = MarketDataProvider(kind="csv", csv_dir=str(tmp_path / "never-mounted"))
    result = run_job(instance, "tetra_data", "2018-01-08", "2018-01-08", provider)
    assert not result.success
    text = failure_text(result)
    assert event_count(instance, result.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == 3
    assert "never-mounted is not reachable" in text
    assert "no earlier good value exists for 2018-01-08" in text


def test_weekly_chain_refuses_bad_bars(instance: dg.DagsterInstance, data_root: Path) -> None:
    class GlitchyFeed(MarketDataProvider):
        """A vendor feed that ships one impossible bar (cannot be had here for real)."""

        def fetch(self, start: str, end: str):
            bars = super().fetch(start, end)
            hit = bars.index[bars["date"] == "2018-03-07"][0]
            bars.loc[hit, "low"] = bars.loc[hit, "high"] * 1.5
            return bars

    provider = GlitchyFeed(kind="synthetic", synthetic_count=3)
    data = run_job(instance, "tetra_data", "2017-06-01", "2018-03-09", provider)
    checks = {c.check_name: c for c in data.get_asset_check_evaluations()}
    assert not checks["high_not_below_low"].passed
    assert checks["high_not_below_low"].metadata["offending_rows"].value == 1
    assert checks["positive_prices"].passed
    # blocking: market_events did not run on the bad bars
    assert not any(e.is_step_success and e.step_key == "market_events" for e in data.all_events)

    weekly = run_job(instance, "tetra_weekly", "2018-03-05", "2018-03-05", provider)
    assert not weekly.success
    message = failure_text(weekly)
    assert "market_data fails quality: 1 bars with high below low, first SYN" in message
    assert not (data_root / "tetra/scenario_definitions/2018-03-05.arrow").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "yesterday"], "--date 'yesterday' is not a date (expected YYYY-MM-DD)"),
        (["--date", "2018-02-30"], "--date '2018-02-30' is not a date"),
        (["--start", "2018-03-01", "--end", "2018-02-01"], "reversed date range"),
        (["--start", "2018-01-01", "--end", "2999-01-01"], "date range ends in the future"),
        (["--date", "1990-01-02"], "starts before the first partition (1999-01-04)"),
        (["--date", "2018-01-06", "--pipeline", "data"], "no trading-day partition"),
        (["--start", "2018-01-01"], "give --date D or both --start S and --end E"),
    ],
)
def test_cli_rejects_bad_dates_with_one_line(
    args: list[str], message: str, dagster_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    result = tetra(dict(os.environ), "run", *args, "--dry-run")
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_a_ui_run_reads_prices_only_inside_the_input_roots(
    instance: dg.DagsterInstance, csv_dir: Path
) -> None:
    """``csv_dir`` set in a run's config (as the UI allows) outside the roots fails the run
    when its resources start; the same folder bound by the operator is read."""
    job = LOCATION.definitions().resolve_job_def("tetra_data")
    provider = {"provider": {"config": {"kind": "csv", "csv_dir": str(csv_dir)}}}
    result = job.execute_in_process(
        instance=instance,
        partition_key="2018-01-03",
        run_config={"resources": provider},
        raise_on_error=False,
    )
    assert not result.success
    assert any(
        f"run config csv_dir '{csv_dir}'" in message and "outside the allowed roots" in message
        for message in failure_messages(result)
    )
    bound = MarketDataProvider(kind="csv", csv_dir=str(csv_dir))
    assert run_job(instance, "tetra_data", "2018-01-03", "2018-01-03", bound).success
