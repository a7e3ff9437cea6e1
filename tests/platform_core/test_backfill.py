"""How CLIs cut a backfill (from the definitions alone) and submit it to the daemon."""

import dagster as dg

from platform_core.backfill import policy_chunks, run_partition_range, run_phases
from platform_core.commands import single
from platform_core.daemon import latest_runs, run_partitions, submit_backfill
from platform_core.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from tetra_assets.location import LOCATION
from tetra_assets.ranges import history_start, partitions_for, pipeline_assets
from tetra_assets.resources import MarketDataProvider

DEFS = LOCATION.definitions(provider=MarketDataProvider(kind="synthetic"))
GRAPH = DEFS.resolve_asset_graph()


def _names(phases: list[list[dg.AssetKey]]) -> list[list[str]]:
    return [sorted(k.to_user_string() for k in phase) for phase in phases]


def test_phases_follow_partition_mappings_and_chunks_the_backfill_policy() -> None:
    """As the daemon's asset backfill: market events (reading 70 earlier days of market data)
    share market data's runs when both target the same days, all in one run; they wait for
    market data when it reaches back further (a weekly backfill's warm-up) or needs more
    than one run."""
    data = pipeline_assets(DEFS, ["data"])
    week = [f"2018-06-0{d}" for d in range(4, 9)]
    same = dict.fromkeys(data, week)
    assert _names(run_phases(GRAPH, data, same)) == [
        ["economic_data", "market_data", "market_events"]
    ]
    warm_up = {**same, dg.AssetKey("market_data"): ["2018-05-31", "2018-06-01", *week]}
    phases = _names(run_phases(GRAPH, data, warm_up))
    assert phases == [["economic_data", "market_data"], ["market_events"]]
    years = [f"d{i:04d}" for i in range(2100)]  # more than one run of the data policy
    assert len(run_phases(GRAPH, data, dict.fromkeys(data, years))) == 2
    weekly = pipeline_assets(DEFS, ["scenarios", "metrics", "assessment"])
    weeks = [f"w{i:03d}" for i in range(261)]
    assert len(run_phases(GRAPH, weekly, dict.fromkeys(weekly, weeks))) == 1  # own weeks only
    chunks = policy_chunks(GRAPH, weekly, weeks)
    assert [(a, b) for a, b in chunks] == [("w000", "w130"), ("w131", "w260")]
    days = [f"d{i:04d}" for i in range(4042)]  # 16 years: a 5-year backfill with its warm-up
    assert policy_chunks(GRAPH, data, days) == [("d0000", "d2099"), ("d2100", "d4041")]


def test_a_backfill_reaches_back_as_far_as_its_first_week_reads() -> None:
    from datetime import date

    keys = pipeline_assets(DEFS, ["data", "assessment"])
    partitions = partitions_for(DEFS, keys, date(2018, 6, 4), date(2018, 6, 29))
    market = partitions[dg.AssetKey("market_data")]
    weeks = partitions[dg.AssetKey("strategy_rankings")]
    assert weeks == ["2018-06-04", "2018-06-11", "2018-06-18", "2018-06-25"]
    assert (
        market[0] == history_start(DEFS, "2018-06-04") < "2007-06-01" and market[-1] == "2018-06-29"
    )
    # the indicators' own mapping: EMA-200 warm-up, 577 weeks before the week
    upstream = GRAPH.get_parent_partition_keys_for_child(
        "2018-06-04", dg.AssetKey("market_data"), dg.AssetKey("technical_indicators")
    ).partitions_subset.get_partition_keys()
    assert market[0] == min(upstream)


def test_submitted_backfill_targets_exactly_the_requested_partitions(
    instance: dg.DagsterInstance,
) -> None:
    """Pins Dagster's private PartitionBackfill: the daemon must see what the CLI meant."""
    wanted = {
        dg.AssetKey("market_data"): ["2018-06-01", "2018-06-04", "2018-06-05"],
        dg.AssetKey("scenario_definitions"): ["2018-06-04"],
    }
    backfill_id = submit_backfill(instance, DEFS, wanted, {"tetra/cli": "backfill"}, "a title")
    stored = instance.get_backfill(backfill_id)
    assert stored.status.value == "REQUESTED" and stored.title == "a title"
    assert stored.tags == {"tetra/cli": "backfill"}
    target = stored.get_asset_backfill_data(GRAPH).target_subset
    assert {
        key: sorted(target.get_partitions_subset(key).get_partition_keys()) for key in wanted
    } == wanted


def test_dynamic_partitions_are_submitted_key_by_key_one_run_each(
    instance: dg.DagsterInstance,
) -> None:
    """Dynamic partitions keep the order they were added in: a backfill of two studies must
    not take in a study registered between them; without a policy, one study per run."""
    from cardio_assets.definitions import defs as cardio
    from cardio_assets.partitions import studies

    instance.add_dynamic_partitions(studies.name, ["b-study", "other", "a-study"])
    graph = cardio.resolve_asset_graph()
    receipt = dg.AssetKey("study_receipt")
    assert policy_chunks(graph, [receipt], ["a-study", "b-study"]) == [
        ("a-study", "a-study"),
        ("b-study", "b-study"),
    ]
    backfill_id = submit_backfill(instance, cardio, {receipt: ["a-study", "b-study"]}, {}, "two")
    target = instance.get_backfill(backfill_id).get_asset_backfill_data(graph).target_subset
    assert sorted(target.get_partitions_subset(receipt).get_partition_keys()) == [
        "a-study",
        "b-study",
    ]


def test_range_tags_are_what_dagster_reads(instance: dg.DagsterInstance) -> None:
    """Pins the fenced range tags: an in-process run tagged with a range materializes exactly
    that range, as a daemon's single-run backfill does."""
    days = dg.DailyPartitionsDefinition(start_date="2020-01-01")

    @dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
    def daily(context: dg.AssetExecutionContext) -> None:
        context.log.info(f"{len(context.partition_keys)} days")

    job = dg.Definitions(assets=[daily]).resolve_implicit_global_asset_job_def()
    result = run_partition_range(job, instance, "2020-01-03", "2020-01-07")
    assert result.success
    materialized = instance.get_materialized_partitions(daily.key)
    assert materialized == {f"2020-01-0{d}" for d in range(3, 8)}


def test_a_retried_run_counts_by_its_retry(instance: dg.DagsterInstance) -> None:
    """A backfill's runs as a command reports them: the newest run per job and partition (the
    instance's run retry replaces the failure), ranges keyed like single partitions."""
    range_tags = {ASSET_PARTITION_RANGE_START_TAG: "d1", ASSET_PARTITION_RANGE_END_TAG: "d5"}
    runs = [
        ("failed-a", "FAILURE", {"dagster/partition": "a"}),
        ("other-b", "SUCCESS", {"dagster/partition": "b"}),
        ("retry-a", "SUCCESS", {"dagster/partition": "a"}),
        ("range", "SUCCESS", range_tags),
    ]
    for run_id, status, tags in runs:
        run = dg.DagsterRun(job_name="job", run_id=run_id, status=dg.DagsterRunStatus(status))
        instance.add_run(run.with_tags(tags))
    latest = latest_runs(instance.get_run_records())
    assert [r.dagster_run.run_id for r in latest] == ["other-b", "retry-a", "range"]
    assert [single(run_partitions(r.dagster_run)) for r in latest] == ["b", "a", "d1..d5"]
    assert single("a..a") == "a"
