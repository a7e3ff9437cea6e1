"""The whole Tetra chain on real bundled data, checked against independent computations."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from platform_core.cli import scratch_instance
from tests.support import latest_metadata
from tests.tetra.conftest import run_job, stored
from tests.tetra.test_indicators import assert_equals_talib, talib_indicators
from tetra_assets.location import LOCATION
from tetra_assets.ranges import history_start
from tetra_assets.resources import MarketDataProvider
from tetra_assets.science.ohlcv import load_bundled, to_wide

pytestmark = pytest.mark.slow  # real tools or a year of data: minutes (README: test tiers)

BUNDLED = MarketDataProvider(kind="bundled")
WEEKS = ("2018-12-03", "2018-12-10", "2018-12-17")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Data from the weeks' warm-up (~11 years, as `tetra backfill` reads it from the
    definitions) .. 2018-12 in one run, then three weeks of the weekly chain in one run."""
    root = tmp_path_factory.mktemp("chain")
    patch = pytest.MonkeyPatch()
    patch.setenv("PLATFORM_DATA_ROOT", str(root / "data"))
    (root / "home").mkdir()
    first_day = history_start(LOCATION.definitions(provider=BUNDLED), WEEKS[0])
    with scratch_instance(str(root / "home")) as instance:
        data = run_job(instance, "tetra_data", str(first_day), "2018-12-21", BUNDLED)
        weekly = run_job(instance, "tetra_weekly", WEEKS[0], WEEKS[-1], BUNDLED)
        yield {"root": root / "data", "instance": instance, "data": data, "weekly": weekly}
    patch.undo()


def test_runs_succeed_and_every_week_is_stored(chain) -> None:
    assert chain["data"].success and chain["weekly"].success
    for asset in ("scenario_definitions", "technical_indicators", "backtest_results"):
        assert sorted(p.stem for p in (chain["root"] / "tetra" / asset).glob("*.arrow")) == list(
            WEEKS
        )


def test_market_data_is_the_real_bundled_bars(chain) -> None:
    day = stored(chain["root"], "market_data", "2018-12-14").set_index("symbol")
    truth = load_bundled(["SP500", "NASDAQ"], "2018-12-14", "2018-12-14").set_index("symbol")
    pd.testing.assert_frame_equal(day, truth)
    assert stored(chain["root"], "market_data", "2018-11-22").empty  # Thanksgiving: no session


def test_indicators_match_independent_pandas_over_the_stored_history(chain) -> None:
    history = load_bundled(["SP500"], "2017-01-01", "2018-12-21")
    week = stored(chain["root"], "technical_indicators", "2018-12-17")
    row = week[(week["symbol"] == "SP500") & (week["date"] == "2018-12-21")].iloc[0]
    close = history.set_index("date")["close"]
    assert row["sma_200"] == pytest.approx(close.iloc[-200:].mean(), rel=1e-9)
    window = close.iloc[-20:]
    assert row["bb_upper"] == pytest.approx(window.mean() + 2 * window.std(ddof=0), rel=1e-9)
    assert row["close"] == close.iloc[-1]


@pytest.mark.parametrize("symbol", ["SP500", "NASDAQ"])
def test_stored_indicators_equal_talib_on_the_full_history(chain, symbol) -> None:
    """TA-Lib on 1999-2018, the stored weeks computed from the warm-up the definitions read."""
    full = load_bundled(["SP500", "NASDAQ"], "1999-01-01", "2018-12-31")
    reference = talib_indicators(
        {c: to_wide(full, c) for c in ("close", "high", "low", "volume")}, symbol
    )
    for week in WEEKS:
        assert_equals_talib(stored(chain["root"], "technical_indicators", week), reference, symbol)
    metadata = latest_metadata(chain["instance"], "technical_indicators", WEEKS[-1])
    assert metadata["ema_200_seed_weight"] < 1e-12
    assert metadata["warm_up_sessions"] >= 2764


def test_backtests_cover_every_scenario_symbol_and_strategy(chain) -> None:
    results = stored(chain["root"], "backtest_results", "2018-12-17")
    scenarios = stored(chain["root"], "scenario_definitions", "2018-12-17")
    assert len(results) == len(scenarios) * 2 * 4
    assert set(results["strategy"]) == {
        "buy_and_hold",
        "sma_crossover",
        "momentum",
        "mean_reversion",
    }
    realized = results[
        (results["scenario_id"] == "realized") & (results["strategy"] == "buy_and_hold")
    ]
    close = load_bundled(["SP500"], "2018-11-01", "2018-12-21").set_index("date")["close"]
    expected = close.iloc[-1] / close.iloc[-22] - 1.0  # 21 sessions held from the anchor close
    got = realized.set_index("symbol").loc["SP500", "total_return"]
    assert got == pytest.approx(expected, rel=1e-9)


def test_rankings_and_report(chain) -> None:
    rankings = stored(chain["root"], "strategy_rankings", "2018-12-17")
    assert rankings["rank"].tolist() == [1, 2, 3, 4]
    assert rankings["mean_sharpe"].is_monotonic_decreasing
    report = json.loads((chain["root"] / "tetra/assessment_report/2018-12-17.json").read_text())
    assert report["markdown"].count("data:image/png;base64,") == 1
    assert report["best_strategy"] == rankings.iloc[0]["strategy"]
    html = Path(report["html"]).read_text()
    assert "<img alt='equity curves' src='data:image/png;base64," in html
    event = chain["instance"].get_latest_materialization_event(dg.AssetKey("assessment_report"))
    assert "Strategy rankings" in event.asset_materialization.metadata["report"].value


def test_each_week_of_a_range_run_carries_its_own_metadata(chain) -> None:
    """The three weeks ran in one run; each week's materialization shows that week's figures
    and report, not the run's last week."""

    def metadata(asset: str, week: str) -> dict:
        records = (
            chain["instance"]
            .fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[week]),
                limit=1,
            )
            .records
        )
        return records[0].asset_materialization.metadata

    for week in WEEKS:
        report = metadata("assessment_report", week)
        assert report["report"].value.startswith(f"# Tetra assessment, week of {week}")
        assert report["html"].value.endswith(f"{week}.html")
        rankings = stored(chain["root"], "strategy_rankings", week)
        assert report["best_strategy"].value == rankings.iloc[0]["strategy"]
        results = stored(chain["root"], "backtest_results", week)
        assert metadata("backtest_results", week)["backtests"].value == len(results)
        metrics = stored(chain["root"], "statistical_metrics", week)
        assert metadata("statistical_metrics", week)["rows"].value == len(metrics)


def test_one_week_alone_equals_the_same_week_in_a_range(chain, tmp_path: Path, monkeypatch) -> None:
    """Partition results do not depend on how the backfill was cut."""
    monkeypatch.setenv("PLATFORM_DATA_ROOT", str(tmp_path))
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        assert run_job(instance, "tetra_data", "2017-11-01", "2018-12-21", BUNDLED).success
        assert run_job(instance, "tetra_weekly", "2018-12-10", "2018-12-10", BUNDLED).success
    for asset in (
        "scenario_definitions",
        "scenario_timeseries",
        "backtest_results",
        "statistical_metrics",
    ):
        alone = pd.read_feather(tmp_path / "tetra" / asset / "2018-12-10.arrow")
        in_range = stored(chain["root"], asset, "2018-12-10")
        pd.testing.assert_frame_equal(alone, in_range)


def test_rerun_plan_is_empty_then_upstream_change_makes_downstream_stale(
    chain, monkeypatch
) -> None:
    from platform_core import plan as planning
    from platform_core.plan import plan

    instance, defs = chain["instance"], LOCATION.definitions(provider=BUNDLED)
    graph = defs.resolve_asset_graph()
    chain_groups = {"scenarios", "metrics", "assessment"}  # not data, not platform health
    weekly = [k for k in graph.toposorted_asset_keys if graph.get(k).group_name in chain_groups]
    assert plan(instance, graph, {k: list(WEEKS) for k in weekly}) == []
    assert run_job(instance, "tetra_data", "2018-12-12", "2018-12-12", BUNDLED).success
    steps = plan(instance, graph, {k: list(WEEKS) for k in weekly})
    stale = {(s.asset, s.partition) for s in steps}
    assert ("scenario_definitions", "2018-12-10") in stale
    assert ("assessment_report", "2018-12-10") in stale
    assert not any(p == "2018-12-03" for _, p in stale)  # that week does not read 12-12
    reasons = {s.asset: s.reason for s in steps if s.partition == "2018-12-10"}
    assert reasons["scenario_definitions"] == "upstream market_data 2018-12-12 changed after it"
    assert reasons["strategy_rankings"] == (
        "upstream backtest_results 2018-12-10 is recomputed in this run"
    )
    # the changed day is checked by mapping it downstream; mapping every week upstream (what
    # many candidates fall back to) finds the same steps for the same reasons
    monkeypatch.setattr(planning, "FEW_CANDIDATES", 0)
    assert plan(instance, graph, {k: list(WEEKS) for k in weekly}) == steps
