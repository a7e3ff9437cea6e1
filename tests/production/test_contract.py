"""The CLI contract's promise (docs/cli.md): the same request makes the same runs whichever
path runs it. Each request goes once to an instance no daemon serves (the in-process runner:
SQLite, this machine's cores) and once to the deployment (Postgres, the daemon: a Dagster
asset backfill); the runs each made must match: which assets, which partition or range, and
the tags (the job's own, such as ECOD's run timeout, and the command's)."""

from pathlib import Path

import dagster as dg
import pytest

from cardio_assets.demo import make_study
from ecod_assets.demo import demo_batch
from platform_core.commands import CLI_TAG
from platform_core.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from tests.support import command as _command

DEPLOYED_LOCATIONS = ("tetra", "ecod", "cardio")  # the deployment serves only these
KEPT_TAGS = {CLI_TAG, "dagster/max_runtime"}  # what a run carries from its request and job
REQUESTS = {
    "tetra": ["tetra", "run", "--pipeline", "data", "--start", "2018-06-04", "--end", "2018-06-08"],
    "ecod": ["ecod", "run", "--batch", "b1", "--mode", "blast-only"],
    "cardio": ["cardio", "run", "--study", "s1"],  # and s2, one run each (below)
}


def _inputs(root: Path, env: dict[str, str]) -> None:
    """Register the same inputs in an instance (register only: no run)."""
    fasta, truth = demo_batch(4, 5)
    (root / "b1.fasta").write_text(fasta)
    (root / "b1.truth.tsv").write_text(truth.to_csv(sep="\t", index=False))
    _command(env, "ecod", "submit", str(root / "b1.fasta"))
    for seed, name in enumerate(("s1", "s2")):
        make_study(root / "studies" / name, echo=False, seed=50 + seed)
    _command(env, "cardio", "submit", *(str(root / "studies" / n) for n in ("s1", "s2")))


def _runs(inst: dg.DagsterInstance) -> set[tuple]:
    """Every run of the instance as (assets it planned, partition or range, kept tags)."""
    out = set()
    for record in inst.get_run_records():
        run = record.dagster_run
        planned = inst.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        )
        assets = frozenset(e.dagster_event.asset_key.to_user_string() for e in planned)
        tags = run.tags
        partitions = tags.get("dagster/partition") or (
            f"{tags[ASSET_PARTITION_RANGE_START_TAG]}..{tags[ASSET_PARTITION_RANGE_END_TAG]}"
        )
        kept = frozenset((k, v) for k, v in tags.items() if k in KEPT_TAGS)
        out.add((assets, partitions, kept))
    return out


def test_the_in_process_runner_makes_the_runs_the_daemon_makes(production) -> None:
    root, env = production
    local = root / "local"
    local_env = {k: v for k, v in env.items() if not k.startswith("DAGSTER_")}
    local_env |= {"DAGSTER_HOME": str(local / "home"), "PLATFORM_DATA_ROOT": str(local / "data")}
    (local / "home").mkdir(parents=True)
    for where, run_env in ((local, local_env), (root / "served", env)):
        where.mkdir(exist_ok=True)
        _inputs(where, run_env)
        for argv in REQUESTS.values():
            _command(run_env, *argv, "--quiet")
        _command(run_env, "cardio", "run", "--study", "s2", "--quiet")

    served = _runs(dg.DagsterInstance.get())  # the deployment's instance (Postgres)
    with pytest.MonkeyPatch.context() as patch:  # the local instance's storage: its own home
        patch.setenv("DAGSTER_HOME", local_env["DAGSTER_HOME"])
        with dg.DagsterInstance.from_config(local_env["DAGSTER_HOME"]) as inst:
            assert _runs(inst) == served
    by_partition = {partitions: assets for assets, partitions, _ in served}
    assert by_partition["2018-06-04..2018-06-08"] == {
        "economic_data",
        "market_data",
        "market_events",
    }  # one run, as the daemon cuts it: market events read earlier days of the same range
    assert "hhsearch_hits" not in by_partition["b1"] and "blast_chain_hits" in by_partition["b1"]
    ecod_tags = next(dict(tags) for _, p, tags in served if p == "b1")
    assert ecod_tags["dagster/max_runtime"] == "86400" and ecod_tags[CLI_TAG] == "ecod run"
    assert {"s1", "s2"} <= set(by_partition)
