"""``ecod``: the seed's orchestration-service calls as a thin wrapper over Dagster.

    ecod reference [--domains F --fasta F]   set and build the reference library (default: demo)
    ecod submit FASTA [--batch-id ID]        register a batch partition, print its id
    ecod run --batch ID --mode full|blast-only|analysis-only [--force-restart]
    ecod resume --batch ID                   re-execute the last failed run from its failed step
    ecod status --batch ID [--json]          per stage: completed / in progress / failed, items
    ecod export --batch ID --out FILE.tsv    one row per domain
    ecod demo --out FILE.fasta [--chains N] [--tier standard|remote]
                                             a demo batch with its true domains beside it (the
                                             remote tier also writes its reference library)

Exit codes: 0 ok, 1 a run failed, 2 bad arguments or input. Runs are recorded in the instance
at ``$DAGSTER_HOME``, so they show in the web UI.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from ecod_assets.batches import TRUTH_SUFFIX, BatchExistsError, default_batch_id, register_batch
from ecod_assets.defs.jobs import JOB_BY_MODE
from ecod_assets.demo import TIERS, demo_batch, write_demo_library
from ecod_assets.partitions import BATCH_GROUP, ecod_batches
from ecod_assets.resources import MODES, STORAGE
from ecod_assets.science.classify import EXPORT_COLUMNS
from ecod_assets.science.fasta import FastaError
from platform_core import cli
from platform_core.checkpoint import latest_materialization
from platform_core.io import atomic_write
from platform_core.keys import InvalidKeyError, validate_partition_key

REFERENCE = dg.AssetKey("reference_library")
ACTIVE = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.NOT_STARTED,
}


def _defs() -> dg.Definitions:
    from ecod_assets.definitions import defs

    return defs


def _require_batch(inst: dg.DagsterInstance, batch_id: str) -> str:
    hint = "register it with 'ecod submit FASTA'"
    return cli.require_partition(inst, ecod_batches, batch_id, "--batch", hint)


def _build_reference(inst: dg.DagsterInstance, domains: str = "", fasta: str = "") -> int:
    job = _defs().resolve_implicit_global_asset_job_def()
    config = {
        "ops": {"reference_library": {"config": {"domains_path": domains, "fasta_path": fasta}}}
    }
    result = cli.run_job(job, inst, asset_selection=[REFERENCE], run_config=config)
    return cli.report(result, "reference library")


def cmd_reference(args: argparse.Namespace) -> int:
    if bool(args.domains) != bool(args.fasta):
        raise cli.CliError("give both --domains and --fasta, or neither (demo library)")
    for path in filter(None, (args.domains, args.fasta)):
        if not Path(path).is_file():
            raise cli.CliError(f"{path}: no such file")
    domains = str(Path(args.domains).resolve()) if args.domains else ""
    fasta = str(Path(args.fasta).resolve()) if args.fasta else ""
    return _build_reference(cli.instance(), domains, fasta)


def cmd_submit(args: argparse.Namespace) -> int:
    fasta = Path(args.fasta)
    if not fasta.is_file():
        raise cli.CliError(f"{fasta}: no such file")
    batch_id = args.batch_id or default_batch_id(fasta)
    try:
        validate_partition_key(batch_id)
        chains = register_batch(fasta, batch_id)
    except (InvalidKeyError, FastaError, BatchExistsError) as error:
        raise cli.CliError(str(error)) from None
    cli.instance().add_dynamic_partitions(ecod_batches.name, [batch_id])
    print(batch_id)
    print(f"{chains} chains registered", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    inst = cli.instance()
    batch_id = _require_batch(inst, args.batch)
    if inst.get_latest_materialization_event(REFERENCE) is None:
        print("no reference library yet: building the demo library first", file=sys.stderr)
        if _build_reference(inst):
            return 1
    job = _defs().resolve_job_def(JOB_BY_MODE[args.mode].name)
    config: dict[str, Any] = {}
    if args.force_restart:
        config = {"resources": {"orchestration": {"config": {"checkpoint_enabled": False}}}}
    progress = cli.Progress(args.quiet)
    result = cli.run_job(job, inst, partition_key=batch_id, run_config=config, progress=progress)
    code = cli.report(result, f"batch {batch_id} ({args.mode})")
    _print_status(inst, batch_id, as_json=False)
    return code


def _last_run(inst: dg.DagsterInstance, batch_id: str) -> dg.RunRecord | None:
    """The latest run of a mode job on this batch."""
    return cli.last_partition_run(inst, batch_id, [job.name for job in JOB_BY_MODE.values()])


def cmd_resume(args: argparse.Namespace) -> int:
    inst = cli.instance()
    batch_id = _require_batch(inst, args.batch)
    code = cli.resume(
        inst, "ecod_assets.definitions", _last_run(inst, batch_id), f"batch {batch_id}"
    )
    _print_status(inst, batch_id, as_json=False)
    return code


def batch_status(inst: dg.DagsterInstance, batch_id: str) -> dict[str, Any]:
    """The seed's get_batch_status: per stage completed / in progress / failed and items."""
    last = _last_run(inst, batch_id)
    steps = (
        {s.step_key: s for s in inst.get_run_step_stats(last.dagster_run.run_id)} if last else {}
    )
    active = last is not None and last.dagster_run.status in ACTIVE
    defs = _defs()
    stages = {}
    for stage in (key.to_user_string() for key in cli.group_assets(defs, [BATCH_GROUP])):
        record = latest_materialization(inst, dg.AssetKey(stage), batch_id)
        meta = record.asset_materialization.metadata if record else {}
        step = steps.get(defs.resolve_assets_def(dg.AssetKey(stage)).op.name)
        status = step.status.value if step and step.status else None
        stages[stage] = {
            "completed": record is not None and status != "FAILURE",
            "in_progress": bool(active and step and step.end_time is None),
            "failed": status == "FAILURE",
            "stats": {
                k: meta[k].value
                for k in ("items_total", "items_processed", "items_failed", "reused")
                if k in meta
            },
        }
    return {
        "batch": batch_id,
        "stages": stages,
        "active_run": cli.run_summary(last) if active else None,
        "last_run": cli.run_summary(last),
    }


def _print_status(inst: dg.DagsterInstance, batch_id: str, as_json: bool) -> None:
    status = batch_status(inst, batch_id)
    if as_json:
        cli.print_json(status)
        return
    rows = []
    for stage, info in status["stages"].items():
        state = next((s for s in ("failed", "in_progress", "completed") if info[s]), "-")
        rows.append({"stage": stage, "state": state.replace("_", " "), **info["stats"]})
    last = status["last_run"]
    print(f"batch {batch_id}: last run {last['last_run'] or '-'} {last['status']}")
    cli.print_table(
        rows, ["stage", "state", "items_total", "items_processed", "items_failed", "reused"]
    )


def cmd_status(args: argparse.Namespace) -> int:
    inst = cli.instance()
    _print_status(inst, _require_batch(inst, args.batch), args.json)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    inst = cli.instance()
    batch_id = _require_batch(inst, args.batch)
    table = STORAGE.read_partition(dg.AssetKey("classification"), batch_id)
    if table is None:
        raise cli.CliError(
            f"batch {batch_id} has no classification yet; run 'ecod run --batch {batch_id}'"
        )
    out = Path(args.out)
    atomic_write(out, lambda tmp: table[EXPORT_COLUMNS].to_csv(tmp, sep="\t", index=False))
    print(f"{len(table)} domains of {table['chain_id'].nunique()} chains -> {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fasta, truth = demo_batch(args.chains, args.seed, prefix=args.prefix, tier=args.tier)
    atomic_write(out, lambda tmp: tmp.write_text(fasta))
    stem = out.name.removesuffix(out.suffix)
    truth_path = out.with_name(stem + TRUTH_SUFFIX)
    atomic_write(truth_path, lambda tmp: truth.to_csv(tmp, sep="\t", index=False))
    print(f"{args.chains} {args.tier} demo chains -> {out} (true domains: {truth_path})")
    if args.tier != "standard":  # the standard tier's library is the default reference
        library = write_demo_library(out.with_name(f"{stem}.library"), tier=args.tier)
        print(
            f"its reference library: ecod reference --domains {library.domains_path} "
            f"--fasta {library.fasta_path}"
        )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ecod", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    p = commands.add_parser("reference", help="set and build the reference library")
    p.add_argument("--domains", help="ECOD domains file (ecod.latest.domains.txt format)")
    p.add_argument("--fasta", help="domain sequences (ids: ecod_domain_id, uid or uid|id|...)")
    p.set_defaults(func=cmd_reference)
    p = commands.add_parser("submit", help="register a FASTA as a batch")
    p.add_argument("fasta")
    p.add_argument("--batch-id")
    p.set_defaults(func=cmd_submit)
    p = commands.add_parser("run", help="run a batch in a mode")
    p.add_argument("--batch", required=True)
    p.add_argument("--mode", choices=MODES, default="full")
    p.add_argument("--force-restart", action="store_true", help="recompute every stage")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_run)
    p = commands.add_parser("resume", help="re-execute the last failed run from its failed step")
    p.add_argument("--batch", required=True)
    p.set_defaults(func=cmd_resume)
    p = commands.add_parser("status", help="per-stage status of a batch")
    p.add_argument("--batch", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = commands.add_parser("export", help="domains of a batch as TSV")
    p.add_argument("--batch", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)
    p = commands.add_parser("demo", help="write a demo batch FASTA with its true domains")
    p.add_argument("--out", required=True, help="FASTA to write; <name>.truth.tsv goes beside it")
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--prefix", default="chain", help="chain id prefix")
    p.add_argument(
        "--tier",
        choices=TIERS,
        default="standard",
        help="remote: conserved-core families and queries ~25%% identical to any member",
    )
    p.set_defaults(func=cmd_demo)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    return cli.dispatch(parser().parse_args(argv))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
