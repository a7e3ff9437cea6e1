"""``omics``: config-driven omics workflows as a thin wrapper over Dagster.

    omics run --config F [--workflow W] [--param k=v ...] [--run KEY]
                                  resolve the config (defaults, the workflow's definition,
                                  OMICS_*, F, --param), register the run and execute it here
    omics submit --config F ...   the same, as a Dagster backfill of the run for the daemon
    omics validate --config F     check the resolved config; print it (--json)
    omics steps --config F        the plan: per step, run / reuse / skip / not built, and why
    omics status [--workflow W] [--json]
                                  per run: workflow, last run, status, duration
    omics resume --workflow W --run KEY
                                  re-execute the run's last failed Dagster run from its failure
    omics export --config F --step S --out FILE.tsv
                                  the step's table from the workflow's latest run
    omics workflows               the workflows and their steps

Without ``--config``, ``--workflow W`` runs W's own config. Exit codes: 0 ok, 1 the run
failed (the failing step and its error are printed), 2 bad arguments, config or input.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from omics_assets import workflows as api
from omics_assets.assets.steps import STATUS_CHECK
from omics_assets.config import ConfigError, Resolved
from omics_assets.partitions import workflow_partitions
from platform_core import backfill, cli
from platform_core.checkpoint import latest_materialization
from platform_core.keys import InvalidKeyError

MODULE = "omics_assets.definitions"
EXPORT_COLUMNS = {"association": ["snp", "chrom", "pos", "beta", "p"]}


def _resolve(args: argparse.Namespace) -> tuple[api.WorkflowDefinition, Resolved]:
    config = Path(args.config) if args.config else None
    if config is None and not args.workflow:
        raise cli.CliError("give --config FILE or --workflow NAME")
    try:
        resolved = api.resolve_run(args.workflow, config, args.param or ())
    except (ConfigError, InvalidKeyError) as error:
        raise cli.CliError(str(error)) from None
    return api.workflow(resolved.config["name"]), resolved


def _register(args: argparse.Namespace) -> tuple[dg.DagsterInstance, api.WorkflowDefinition, str]:
    definition, resolved = _resolve(args)
    config = Path(args.config) if args.config else None
    key = args.run or api.default_run_key(resolved, config)
    try:
        api.register_run(definition, key, resolved)
    except (ConfigError, InvalidKeyError) as error:
        raise cli.CliError(str(error)) from None
    inst = cli.instance()
    inst.add_dynamic_partitions(definition.partitions_name, [key])
    return inst, definition, key


def _failure(inst: dg.DagsterInstance, run_id: str) -> str:
    """The first failed step of a run and its error."""
    for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data
        user = data.user_failure_data
        text = user.description if user else (data.error.message if data.error else "")
        return f"{entry.step_key}: {(text or 'failed').strip()}"
    return "run failed"


def _notices(inst: dg.DagsterInstance, run_id: str) -> list[str]:
    """The run's failed checks: steps skipped at run time (with the reason) and quality
    warnings."""
    out = []
    for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if not evaluation.passed:
            kind = "skipped" if evaluation.check_name == STATUS_CHECK else "warning"
            where = evaluation.asset_key.to_user_string()
            out.append(f"{kind} {where}: {evaluation.description}")
    return out


def cmd_run(args: argparse.Namespace) -> int:
    inst, definition, key = _register(args)
    from omics_assets.definitions import defs

    job = defs.resolve_job_def(definition.name)
    print(f"run {key} of workflow {definition.name}")
    result = cli.run_job(
        job, inst, key, tags={"omics/cli": "run"}, progress=cli.Progress(args.quiet)
    )
    for notice in _notices(inst, result.run_id):
        print(notice)
    if result.success:
        print(f"workflow {definition.name} run {key}: succeeded (run {result.run_id})")
        return 0
    print(
        f"workflow {definition.name} run {key}: FAILED (run {result.run_id}): "
        f"{_failure(inst, result.run_id)}",
        file=sys.stderr,
    )
    return 1


def cmd_submit(args: argparse.Namespace) -> int:
    inst, definition, key = _register(args)
    from omics_assets.definitions import defs

    assets = {
        k: [key] for k in defs.resolve_job_def(definition.name).asset_layer.executable_asset_keys
    }
    backfill_id = backfill.submit_backfill(
        inst, defs, assets, {"omics/cli": "submit"}, f"omics {definition.name} run {key}"
    )
    print(f"run {key} of workflow {definition.name}: backfill {backfill_id} submitted")
    if not backfill.daemon_serves(inst):
        print(
            "no daemon serves this instance: the run starts when one does "
            "(dagster dev, deploy/up.sh)",
            file=sys.stderr,
        )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    definition, resolved = _resolve(args)
    if args.json:
        cli.print_json(resolved.config)
    else:
        steps = [s for s, t in resolved.config["steps"].items() if t["enabled"]]
        print(f"valid: workflow {definition.name} ({definition.domain}), steps {', '.join(steps)}")
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    definition, resolved = _resolve(args)
    rows = [
        {"step": p.step, "action": p.action, "reads": ", ".join(p.reads) or "-", "why": p.why}
        for p in api.plan(definition, resolved.config)
    ]
    if args.json:
        cli.print_json(rows)
    else:
        print(f"workflow {definition.name} ({definition.domain}):")
        cli.print_table(rows, ["step", "action", "reads", "why"])
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    inst = cli.instance()
    names = [args.workflow] if args.workflow else list(api.definitions())
    rows: list[dict[str, Any]] = []
    for name in names:
        definition = api.workflow(name)
        # its own job's runs, and those of the workflows it feeds (they run its steps too)
        feeding = [d.name for d in api.definitions().values() if d.attributes.get("input") == name]
        last = cli.last_partition_runs(inst, [name, *feeding])
        for key in inst.get_dynamic_partitions(definition.partitions_name):
            if key in last or api.is_registered(definition, key):
                rows.append({"workflow": name, "run": key, **cli.run_summary(last.get(key))})
    cli.print_rows(
        rows, ["workflow", "run", "status", "started", "duration_s", "last_run"], args.json
    )
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    inst = cli.instance()
    definition = api.workflow(args.workflow)
    key = cli.require_partition(
        inst,
        workflow_partitions(definition),
        args.run,
        "--run",
        f"run it with 'omics run --workflow {definition.name}'",
    )
    last = cli.last_partition_run(inst, key, [definition.name])
    return cli.resume(inst, MODULE, last, f"workflow {definition.name} run {key}")


def cmd_export(args: argparse.Namespace) -> int:
    definition, _ = _resolve(args)
    inst = cli.instance()
    asset = dg.AssetKey([definition.name, args.step])
    record = latest_materialization(inst, asset, None)
    if record is None:
        raise cli.CliError(f"{asset.to_user_string()} has never been materialized")
    meta = record.asset_materialization.metadata
    folder = Path(meta["output_dir"].value)
    tables = [n for n in meta["files_created"].value if n.endswith(".tsv")]
    if not tables:
        raise cli.CliError(f"step {args.step} has no table to export")
    table = pd.read_csv(folder / tables[0], sep="\t")
    table = table[EXPORT_COLUMNS.get(args.step, list(table.columns))]
    table.to_csv(args.out, sep="\t", index=False)
    partition = record.asset_materialization.partition
    print(f"{asset.to_user_string()} (run {partition}): {len(table)} rows -> {args.out}")
    return 0


def cmd_workflows(args: argparse.Namespace) -> int:
    rows = [
        {
            "workflow": d.name,
            "domain": d.domain,
            "steps": ", ".join(api.built_steps(d)),
            "definition": str(d.file),
        }
        for d in api.definitions().values()
    ]
    cli.print_table(rows, ["workflow", "domain", "steps", "definition"])
    return 0


def _config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="the user's config YAML")
    p.add_argument("--workflow", help="the workflow (default: the config's name:)")
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="override one resolved key, e.g. steps.qc.config.maf=0.05 (repeatable)",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="omics", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("run", cmd_run, "register a run and execute it here"),
        ("submit", cmd_submit, "register a run, submit it as a backfill"),
    ):
        p = commands.add_parser(name, help=text)
        _config_arguments(p)
        p.add_argument("--run", help="the run's key (default: <config stem>-<config hash>)")
        if func is cmd_run:
            p.add_argument("--quiet", action="store_true", help="no progress lines")
        p.set_defaults(func=func)
    for name, func, text in (
        ("validate", cmd_validate, "check and print the resolved config"),
        ("steps", cmd_steps, "what a run would do per step, and why"),
    ):
        p = commands.add_parser(name, help=text)
        _config_arguments(p)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
    p = commands.add_parser("status", help="runs per workflow")
    p.add_argument("--workflow")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = commands.add_parser("resume", help="re-execute a failed run from its failed step")
    p.add_argument("--workflow", required=True)
    p.add_argument("--run", required=True)
    p.set_defaults(func=cmd_resume)
    p = commands.add_parser("export", help="write a step's table from the latest run")
    _config_arguments(p)
    p.add_argument("--step", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)
    commands.add_parser("workflows", help="the workflows").set_defaults(func=cmd_workflows)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return cli.dispatch(args)
    except ConfigError as error:
        cli.fail(str(error))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
