"""``ecod``: the seed's orchestration-service calls, on the platform's CLI contract (docs/cli.md).

    ecod submit FASTA [--id ID]              register a batch partition, print its id
    ecod run [FASTA] [--batch ID] [--mode full|blast-only|analysis-only] [--force-restart]
    ecod status [--batch ID] [--json]        per batch; with --batch, per stage too
    ecod resume --batch ID                   re-execute the last failed run from its failed step
    ecod export --batch ID [--step S] --out FILE.tsv|.csv|.parquet   one row per domain
    ecod demo --out DIR [--name N] [--chains N] [--tier standard|remote]
    ecod reference [--domains F --fasta F]   set the location's release (none: the demo release)
                                             and build its library

Exit codes: 0 ok, 1 a run failed, 2 bad arguments or input. Runs are recorded in the instance
at ``$DAGSTER_HOME``, so they show in the web UI.
"""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from ecod_assets.defs.assets.reference import REFERENCE, record_release
from ecod_assets.defs.jobs import JOB_BY_MODE, SELECTIONS, mode_config
from ecod_assets.demo import TIERS, demo_batch, write_demo_library
from ecod_assets.inputs import BATCHES, TRUTH_SUFFIX, register_batch
from ecod_assets.location import LOCATION
from ecod_assets.partitions import BATCH_GROUP
from ecod_assets.progress import RunEvents, read_run, step_seconds
from ecod_assets.resources import MODES
from ecod_assets.science.classify import EXPORT_COLUMNS
from ecod_assets.science.fasta import FastaError
from ecod_assets.science.reference import ReferenceError, read_release
from platform_core import cli, runstats
from platform_core.checkpoint import latest_materialization
from platform_core.commands import LocationCli, Request
from platform_core.datastore import DataStore
from platform_core.io import atomic_write
from platform_core.location import group_assets

STAGE_FIGURES = ("items_total", "items_processed", "items_failed", "reused")


class EcodCli(LocationCli):
    location = LOCATION
    inputs = "FASTA"
    id_aliases = ("--batch-id",)
    export_step = "classification"
    status_columns = ("chains", "domains", "stages_done")

    def register(self, store: DataStore, path: Path, key: str | None) -> str:
        batch = register_batch(store, path, key)
        print(f"{BATCHES.record(store, batch)['chains']} chains registered", file=sys.stderr)
        return batch

    def add_run_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--mode", choices=MODES, default="full")
        parser.add_argument("--force-restart", action="store_true", help="recompute every stage")

    def request(self, args: argparse.Namespace, keys: list[str]) -> Request:
        graph = self.session.defs.resolve_asset_graph()
        assets = SELECTIONS[args.mode].resolve(graph)
        config: dict[str, Any] = dict(mode_config(args.mode))
        if args.force_restart:
            config["resources"] = {"orchestration": {"config": {"checkpoint_enabled": False}}}
        partitions = {asset: keys for asset in sorted(assets)}
        return Request({JOB_BY_MODE[args.mode]: partitions}, config, self.tags(args))

    def stages(
        self, batch: str, record: dg.RunRecord | None, live: bool = False
    ) -> dict[str, dict[str, Any]]:
        """The seed's get_batch_status: per stage completed / in progress / failed, items, and
        its step's time in the last run (``seconds``; running: so far). With ``live``, what the
        run's event log says too (else None): items done / total inside a stage
        (``progress``) and a failed step's error (``error``)."""
        inst, defs = self.session.instance, self.session.defs
        run_id = record.dagster_run.run_id if record else None
        steps = {s.step_key: s for s in inst.get_run_step_stats(run_id)} if run_id else {}
        active = record is not None and not record.dagster_run.is_finished
        events = read_run(inst, run_id) if live and run_id else RunEvents({}, {})
        now = time.time()
        stages = {}
        for key in group_assets(defs, [BATCH_GROUP]):
            materialized = latest_materialization(inst, key, batch)
            meta = materialized.asset_materialization.metadata if materialized else {}
            step_key = defs.resolve_assets_def(key).op.name
            step = steps.get(step_key)
            status = step.status.value if step and step.status else None
            running = bool(active and step and step.end_time is None)
            count = events.counts.get(key.to_user_string())
            stages[key.to_user_string()] = {
                "completed": materialized is not None and status != "FAILURE",
                "in_progress": running,
                "failed": status == "FAILURE",
                "stats": {k: meta[k].value for k in STAGE_FIGURES if k in meta},
                "seconds": step_seconds(step, now if running else None),
                "progress": asdict(count) if count else None,
                "error": events.errors.get(step_key) if status == "FAILURE" else None,
            }
        return stages

    def figures(self, key: str, record: dg.RunRecord | None, live: bool = False) -> dict[str, Any]:
        stages = self.stages(key, record, live)
        chains = stages["batch_chains"]["stats"].get("items_total")
        if chains is None:  # not read yet: what submit counted (a partition added in the UI: none)
            try:
                chains = BATCHES.record(self.session.store, key).get("chains")
            except FileNotFoundError:
                chains = None
        classified = latest_materialization(
            self.session.instance, dg.AssetKey("classification"), key
        )
        domains = classified.asset_materialization.metadata.get("domains") if classified else None
        done = sum(stage["completed"] for stage in stages.values())
        return {
            "chains": chains,
            "domains": domains.value if domains else None,
            "stages_done": f"{done}/{len(stages)}",
            "stages": stages,
        }

    def print_detail(self, batch: str, as_json: bool) -> None:
        """The seed's get_batch_status: per stage completed / in progress / failed, items."""
        record = self.last_run(batch)
        row = {self.location.item: batch, **self.figures(batch, record, live=True)}
        row["last_run"] = runstats.run_summary(record)
        active = record is not None and not record.dagster_run.is_finished
        row["active_run"] = row["last_run"] if active else None
        if as_json:
            cli.print_json(row)
            return
        stages = [
            {
                "stage": stage,
                "state": next((s for s in ("failed", "in_progress", "completed") if info[s]), "-"),
                "progress": "{done}/{total}".format(**info["progress"])
                if info["progress"]
                else None,
                "seconds": info["seconds"],
                **info["stats"],
            }
            for stage, info in row["stages"].items()
        ]
        last = row["last_run"]
        print(f"batch {batch}: last run {last['last_run'] or '-'} {last['status']}")
        cli.print_table(stages, ["stage", "state", "progress", "seconds", *STAGE_FIGURES])
        for stage, info in row["stages"].items():
            if info["error"]:
                print(f"\n{stage} failed:\n  " + info["error"].replace("\n", "\n  "))

    def export_table(self, key: str, step: str) -> pd.DataFrame:
        table = super().export_table(key, step)
        return table[EXPORT_COLUMNS] if step == self.export_step else table

    def add_demo_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default="demo-batch", help="<name>.fasta in --out")
        parser.add_argument("--chains", type=int, default=100)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--prefix", default="chain", help="chain id prefix")
        parser.add_argument(
            "--tier",
            choices=TIERS,
            default="standard",
            help="remote: conserved-core families and queries ~25%% identical to any member",
        )

    def demo(self, args: argparse.Namespace) -> int:
        out = Path(args.out) / f"{args.name}.fasta"
        fasta, truth = demo_batch(args.chains, args.seed, prefix=args.prefix, tier=args.tier)
        atomic_write(out, lambda tmp: tmp.write_text(fasta))
        truth_path = out.with_name(args.name + TRUTH_SUFFIX)
        atomic_write(truth_path, lambda tmp: truth.to_csv(tmp, sep="\t", index=False))
        print(f"{args.chains} {args.tier} demo chains -> {out} (true domains: {truth_path})")
        if args.tier != "standard":  # the standard tier's library is the default reference
            library = write_demo_library(out.with_name(f"{args.name}.library"), tier=args.tier)
            print(
                f"its reference library: ecod reference --domains {library.domains_path} "
                f"--fasta {library.fasta_path}"
            )
        return 0

    def add_verbs(self, commands: Any) -> None:
        p = commands.add_parser("reference", help="set the location's release, build its library")
        p.add_argument("--domains", help="ECOD domains file (ecod.latest.domains.txt format)")
        p.add_argument("--fasta", help="domain sequences (ids: ecod_domain_id, uid or uid|...)")
        p.set_defaults(func=self.cmd_reference)

    def cmd_reference(self, args: argparse.Namespace) -> int:
        """Record the release (the given files, or the demo release) as the location's
        setting, then materialize reference_library, which builds it once."""
        if bool(args.domains) != bool(args.fasta):
            raise cli.CliError("give both --domains and --fasta, or neither (the demo release)")
        for path in filter(None, (args.domains, args.fasta)):
            if not Path(path).is_file():
                raise cli.CliError(f"{path}: no such file")
        files = (Path(args.domains), Path(args.fasta)) if args.domains else None
        if files is not None:  # a release that does not read is refused before it is recorded
            try:
                read_release(*files)
            except (FastaError, ReferenceError) as error:
                raise cli.CliError(f"invalid reference library: {error}") from None
        record_release(self.session.store, files)
        if os.environ.get("ECOD_RELEASE_DOMAINS"):
            print(
                "note: ECOD_RELEASE_DOMAINS / _FASTA are set: their release is used",
                file=sys.stderr,
            )
        job = self.session.defs.resolve_implicit_global_asset_job_def()
        result = cli.run_job(job, self.session.instance, asset_selection=[REFERENCE])
        return cli.report(self.session.instance, result, "reference library")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.dispatch(EcodCli().parser("ecod", __doc__.split("\n\n")[0]).parse_args(argv))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
