"""``cardio``: cardiology studies as a thin wrapper over Dagster.

    cardio run STUDY_DIR... [--study NAME]  register the study folders (read-only) and run
                                            them: a Dagster backfill when a daemon serves the
                                            instance, else here on every core
    cardio submit STUDY_DIR... [--study NAME]
                                            register them only (the next run, the UI or the
                                            inbox sensor runs them)
    cardio status [--study S] [--json]      per study: last run, mode, HR, EF, error code
    cardio report --study S --out FILE.json the report JSON (for a hard stop: error.code)
    cardio resume --study S                 re-execute the last failed run from its failed step
    cardio demo --out DIR [--preset default|bench|ecg-only] [--count N]

The study's partition key is its folder name (letters, digits, '.', '_', '-'). Exit codes:
0 ok (a degraded, ECG-only or echo-only study included), 1 the run failed (the hard-stop code
or the reason is printed), 2 bad arguments or input.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from cardio_assets.defs.jobs import study_job
from cardio_assets.demo import demo
from cardio_assets.partitions import GROUP, studies
from cardio_assets.resources import STORAGE
from cardio_assets.studies import STUDIES
from platform_core import backfill, cli
from platform_core.io import write_json
from platform_core.keys import InvalidKeyError
from platform_core.registry import RegisteredElsewhereError

MODULE = "cardio_assets.definitions"


def _register(args: argparse.Namespace) -> tuple[dg.DagsterInstance, list[str]]:
    """Every folder registered as a study (all checked before any is added)."""
    if args.study and len(args.study_dir) > 1:
        raise cli.CliError("--study names one study: give one STUDY_DIR with it")
    try:
        names = [STUDIES.register(Path(folder), args.study) for folder in args.study_dir]
    except (InvalidKeyError, RegisteredElsewhereError, FileNotFoundError) as error:
        raise cli.CliError(str(error)) from None
    if len(set(names)) < len(names):
        raise cli.CliError("two STUDY_DIRs have the same folder name: one study each")
    inst = cli.instance()
    inst.add_dynamic_partitions(studies.name, names)
    return inst, names


def _require_study(inst: dg.DagsterInstance, study: str) -> str:
    return cli.require_partition(
        inst, studies, study, "--study", "register it with 'cardio run STUDY_DIR'"
    )


def _last_run(inst: dg.DagsterInstance, study: str) -> dg.RunRecord | None:
    return cli.last_partition_run(inst, study, [study_job.name])


def hard_stop(inst: dg.DagsterInstance, record: dg.RunRecord | None) -> dict[str, Any] | None:
    """The failure of a failed run: the step, its message and its E_HARD code if any; for a
    study stopped by a quality gate, the gate and its reason."""
    if record is None or record.dagster_run.status != dg.DagsterRunStatus.FAILURE:
        return None
    run_id = record.dagster_run.run_id
    for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data
        user = data.user_failure_data
        metadata = {k: v.value for k, v in (user.metadata if user else {}).items()}
        if user is None:  # not a hard stop: a failed quality gate says more than the error
            for check in inst.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                evaluation = check.dagster_event.event_specific_data
                if not evaluation.passed:
                    return {
                        "code": None,
                        "message": f"quality gate {evaluation.check_name}: "
                        f"{evaluation.description}",
                        "step": check.step_key,
                    }
        return {
            "code": metadata.get("code"),
            "message": user.description
            if user
            else data.error.message.strip()
            if data.error
            else "step failed",
            "step": entry.step_key,
            **({"file": metadata["file"]} if "file" in metadata else {}),
        }
    return {"code": None, "message": "run failed (see the run's events)", "step": None}


def study_report(
    inst: dg.DagsterInstance, study: str, record: dg.RunRecord | None
) -> dict[str, Any]:
    """The stored report, or for a study whose last run (``record``) failed its error;
    ``mode`` None when there is no complete report."""
    error = hard_stop(inst, record)
    if error is None:
        report = STORAGE.read_partition(dg.AssetKey("cardio_report"), study)
        if report is not None:
            return report
    return {
        "study": study,
        "mode": None,
        "results": None,
        "error": error or {"code": None, "message": "never run", "step": None},
    }


def study_status(study: str, record: dg.RunRecord | None, report: dict[str, Any]) -> dict[str, Any]:
    """A status row of a study from its last run and its ``study_report``."""
    results = report.get("results") or {}
    return {
        "study": study,
        **cli.run_summary(record),
        "mode": report["mode"],
        "heart_rate_bpm": round(results["ecg"]["heart_rate_bpm"], 1)
        if results.get("ecg")
        else None,
        "ef_percent": round(results["echo"]["ef_percent"], 1) if results.get("echo") else None,
        "degradations": len(report.get("degradations", [])),
        "error": (report["error"] or {}).get("code") or (report["error"] or {}).get("message"),
    }


def _print_status(rows: Sequence[dict[str, Any]], as_json: bool) -> None:
    cli.print_rows(
        rows,
        [
            "study",
            "status",
            "mode",
            "heart_rate_bpm",
            "ef_percent",
            "degradations",
            "error",
            "last_run",
        ],
        as_json,
    )


def cmd_run(args: argparse.Namespace) -> int:
    inst, names = _register(args)
    in_process = len(names) > 1 and (args.in_process or not backfill.daemon_serves(inst))
    from cardio_assets.definitions import defs  # sets sklearn's KMP_* variables: warm after

    if in_process:
        backfill.warm_workers(MODULE)

    progress = cli.Progress(args.quiet)
    tags = {"cardio/cli": "run"}
    assets = {key: names for key in cli.group_assets(defs, [GROUP])}
    if len(names) == 1:  # one run, its steps as progress
        job = defs.resolve_job_def(study_job.name)
        cli.run_job(job, inst, names[0], tags=tags, progress=progress)
    elif in_process:
        backfill.run_in_process(MODULE, defs, inst, {study_job.name: assets}, tags, progress)
        progress.done()
    else:
        title = f"cardio run, {len(names)} studies"
        return backfill.submit_and_report(inst, defs, assets, tags, title, args, progress)
    last = cli.last_partition_runs(inst, [study_job.name])  # one query, not one per study
    reports = {name: study_report(inst, name, last.get(name)) for name in names}
    rows = [study_status(name, last.get(name), reports[name]) for name in names]
    if args.json or len(names) > 1:
        _print_status(rows, args.json)
    for row in rows:
        if row["status"] != "SUCCESS":
            error = reports[row["study"]]["error"] or {}
            code = f"{error['code']}: " if error.get("code") else ""
            print(
                f"study {row['study']}: FAILED (run {row['last_run']}): "
                f"{code}{error.get('message')}",
                file=sys.stderr,
            )
        elif len(rows) == 1 and not args.json:
            print(f"study {row['study']}: succeeded, mode {row['mode']} (run {row['last_run']})")
    return 0 if all(row["status"] == "SUCCESS" for row in rows) else 1


def cmd_submit(args: argparse.Namespace) -> int:
    _, names = _register(args)
    print("\n".join(names))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    inst = cli.instance()
    names = (
        [_require_study(inst, args.study)]
        if args.study
        else sorted(inst.get_dynamic_partitions(studies.name))
    )
    last = cli.last_partition_runs(inst, [study_job.name])
    rows = [study_status(s, last.get(s), study_report(inst, s, last.get(s))) for s in names]
    _print_status(rows, args.json)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    inst = cli.instance()
    study = _require_study(inst, args.study)
    report = study_report(inst, study, _last_run(inst, study))
    write_json(Path(args.out), report)
    print(f"study {study}: mode {report['mode']} -> {args.out}")
    return 0 if report["mode"] else 1


def cmd_resume(args: argparse.Namespace) -> int:
    inst = cli.instance()
    study = _require_study(inst, args.study)
    return cli.resume(inst, MODULE, _last_run(inst, study), f"study {study}")


def cmd_demo(args: argparse.Namespace) -> int:
    made = demo(Path(args.out), args.preset, args.count)
    print(f"{len(made)} demo studies -> {args.out}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="cardio", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("run", cmd_run, "register study folders and run them"),
        ("submit", cmd_submit, "register study folders"),
    ):
        p = commands.add_parser(name, help=text)
        p.add_argument("study_dir", nargs="+")
        p.add_argument("--study", help="partition key of a single STUDY_DIR (default: its name)")
        p.set_defaults(func=func)
        if func is cmd_run:
            p.add_argument("--quiet", action="store_true", help="no progress lines")
            p.add_argument("--json", action="store_true", help="per study, as JSON")
            backfill.add_backfill_arguments(p)
    p = commands.add_parser("status", help="per study: last run, mode, results, error")
    p.add_argument("--study")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = commands.add_parser("report", help="write the study's report JSON")
    p.add_argument("--study", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_report)
    p = commands.add_parser("resume", help="re-execute the last failed run from its failed step")
    p.add_argument("--study", required=True)
    p.set_defaults(func=cmd_resume)
    p = commands.add_parser("demo", help="write demo study folders")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", choices=["default", "bench", "ecg-only"], default="default")
    p.add_argument("--count", type=int, default=100, help="studies (bench, ecg-only)")
    p.set_defaults(func=cmd_demo)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    return cli.dispatch(parser().parse_args(argv))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
