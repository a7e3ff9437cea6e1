"""``cardio``: cardiology studies on the platform's CLI contract (docs/cli.md).

    cardio submit STUDY_DIR... [--id NAME]  register the study folders (read-only), no run
    cardio run [STUDY_DIR...] [--study S]   register if needed, then run them: through the
                                            daemon when one serves the instance (a backfill),
                                            else here, several studies on every core
    cardio status [--study S] [--json]      per study: last run, mode, HR, EF, error code
    cardio resume --study S                 re-execute the last failed run from its failed step
    cardio export --study S [--step S] --out FILE.csv   a study's record as a table
    cardio report --study S --out FILE.json the report JSON (for a hard stop: error.code)
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

from cardio_assets.demo import demo
from cardio_assets.inputs import register_study
from cardio_assets.location import LOCATION
from platform_core import cli
from platform_core.commands import LocationCli, single
from platform_core.datastore import DataStore
from platform_core.io import write_json


class CardioCli(LocationCli):
    location = LOCATION
    inputs = "STUDY_DIR"
    many_inputs = True
    export_step = "cardio_report"
    status_columns = ("mode", "heart_rate_bpm", "ef_percent", "degradations", "error")

    def register(self, store: DataStore, path: Path, key: str | None) -> str:
        return register_study(store, path, key)

    def hard_stop(self, record: dg.RunRecord | None) -> dict[str, Any] | None:
        """The failure of a failed run: the step, its message and its E_HARD code if any; for
        a study stopped by a quality gate, the gate and its reason."""
        if record is None or record.dagster_run.status != dg.DagsterRunStatus.FAILURE:
            return None
        inst, run_id = self.session.instance, record.dagster_run.run_id
        for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            data = entry.dagster_event.step_failure_data
            user = data.user_failure_data
            metadata = {k: v.value for k, v in (user.metadata if user else {}).items()}
            if user is None:  # not a hard stop: a failed quality gate says more than the error
                checks = inst.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
                for check in checks:
                    evaluation = check.dagster_event.event_specific_data
                    if not evaluation.passed:
                        return {
                            "code": None,
                            "message": f"quality gate {evaluation.check_name}: "
                            f"{evaluation.description}",
                            "step": check.step_key,
                        }
            message = user.description if user else data.error.message.strip() if data.error else ""
            return {
                "code": metadata.get("code"),
                "message": message or "step failed",
                "step": entry.step_key,
                **({"file": metadata["file"]} if "file" in metadata else {}),
            }
        return {"code": None, "message": "run failed (see the run's events)", "step": None}

    def study_report(self, study: str, record: dg.RunRecord | None) -> dict[str, Any]:
        """The stored report, or for a study whose last run failed its error; ``mode`` None
        when there is no complete report."""
        error = self.hard_stop(record)
        if error is None:
            try:
                return self.session.defs.load_asset_value(
                    "cardio_report", partition_key=study, instance=self.session.instance
                )
            except dg.Failure:  # never materialized
                pass
        return {
            "study": study,
            "mode": None,
            "results": None,
            "error": error or {"code": None, "message": "never run", "step": None},
        }

    def figures(self, key: str, record: dg.RunRecord | None) -> dict[str, Any]:
        report = self.study_report(key, record)
        results = report.get("results") or {}
        error = report["error"] or {}
        return {
            "mode": report["mode"],
            "heart_rate_bpm": round(results["ecg"]["heart_rate_bpm"], 1)
            if results.get("ecg")
            else None,
            "ef_percent": round(results["echo"]["ef_percent"], 1) if results.get("echo") else None,
            "degradations": len(report.get("degradations", [])),
            "error": error.get("code") or error.get("message"),
            "failure": error,
        }

    def report_runs(self, args: argparse.Namespace) -> None:
        """As the kit's, a failure by its E_HARD code or failed quality gate, a success with
        the report's mode."""
        instance = self.session.instance
        for run in self.runs:
            record = instance.get_run_record_by_id(run["run_id"]) if run["run_id"] else None
            if run["status"] != "SUCCESS":
                failure = self.hard_stop(record) or {"message": run["error"]}
                code = f"{failure['code']}: " if failure.get("code") else ""
                print(
                    f"{self.what(run)}: FAILED (run {run['run_id'] or '-'}): "
                    f"{code}{failure.get('message')}",
                    file=sys.stderr,
                )
            elif len(self.runs) == 1 and not args.json:
                mode = self.study_report(single(run["partitions"]), record)["mode"]
                print(f"{self.what(run)}: succeeded, mode {mode} (run {run['run_id']})")

    def add_demo_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", choices=["default", "bench", "ecg-only"], default="default")
        parser.add_argument("--count", type=int, default=100, help="studies (bench, ecg-only)")

    def demo(self, args: argparse.Namespace) -> int:
        made = demo(Path(args.out), args.preset, args.count)
        print(f"{len(made)} demo studies -> {args.out}")
        return 0

    def add_verbs(self, commands: Any) -> None:
        self.add_verb(commands, "report", "write the study's report JSON", self.cmd_report, True)

    def cmd_report(self, args: argparse.Namespace) -> int:
        study = self.require(args.id)
        report = self.study_report(study, self.last_run(study))
        write_json(Path(args.out), report)
        print(f"study {study}: mode {report['mode']} -> {args.out}")
        return 0 if report["mode"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    return cli.dispatch(CardioCli().parser("cardio", __doc__.split("\n\n")[0]).parse_args(argv))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
