"""The CLI contract every location follows (docs/cli.md), built from its Location spec:

    submit INPUT [--id ID]          register the input as a partition, with no run; print its id
    run [INPUT] [<flag> ID] ...     register if needed, then run: through the daemon when one
                                    serves the instance (a Dagster backfill, in the UI; the CLI
                                    waits and shows progress), else here (--here forces it)
    status [<flag> ID] [--json]     per partition: last run, state, key figures
    resume <flag> ID                re-execute the partition's last failed run from its failure
    export <flag> ID [--step STEP] --out FILE    a table: .tsv, .csv or .parquet by extension
    demo --out DIR                  write demo inputs
    health [--json]                 pipelines and system checks (exit 1: unhealthy)

Exit codes: 0 success, 1 a run failed, 2 bad usage or bad input (one line on stderr). A
location's CLI subclasses ``LocationCli``: how a run is requested, its key figures, its demo,
and verbs of its own.
"""

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from platform_core import backfill, cli, daemon, health, platform_cli, platform_config, runstats
from platform_core.datastore import DataStore
from platform_core.io import atomic_write
from platform_core.keys import InvalidKeyError
from platform_core.location import Location
from platform_core.platform_cli import PlatformParser
from platform_core.session import CLI_TAG, Request, Session

TABLE_WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    ".tsv": lambda table, path: table.to_csv(path, sep="\t", index=False),
    ".csv": lambda table, path: table.to_csv(path, index=False),
    ".parquet": lambda table, path: table.to_parquet(path, index=False),
}


class LocationCli:
    """The common verbs of one location. Subclasses set ``location``, ``inputs`` (the metavar
    of what ``submit`` registers; empty: nothing to register) and override the hooks."""

    location: Location
    inputs: str = ""
    submits: bool = False  # a submit verb without INPUT (the location's options name it)
    many_inputs: bool = False  # several INPUTs at once (one partition each)
    id_aliases: tuple[str, ...] = ()  # earlier names of --id
    export_step: str = ""
    status_columns: tuple[str, ...] = ()

    warm_before_definitions = False  # start workers before loading the definitions

    def __init__(self) -> None:
        self.session = Session(self.location)
        self.runs: list[dict[str, Any]] = []  # how the runs of a ``run`` ended
        self.backfill: dict[str, str] = {}  # the backfill a ``run`` through the daemon made
        self.daemon_config = platform_config.config_path()  # before --platform-config sets it

    # ---- hooks -------------------------------------------------------------------------
    def register(self, store: DataStore, path: Path, key: str | None) -> str:
        """Register one input (as the inbox does); its partition key."""
        raise NotImplementedError(f"{self.location.name} has no inputs to register")

    def refused(self) -> tuple[type[Exception], ...]:
        """Errors of bad input (exit 2, one line)."""
        inbox = self.location.inbox
        found = inbox.refused if inbox is not None and not callable(inbox) else ()
        return (InvalidKeyError, FileNotFoundError, *found)

    def add_run_options(self, parser: argparse.ArgumentParser) -> None:
        """The location's own options of ``run``."""

    def add_partition_options(self, parser: argparse.ArgumentParser, verb: str) -> None:
        """Options that name a partition besides the location's flag (omics: --workflow)."""

    def request(self, args: argparse.Namespace, keys: list[str]) -> Request | None:
        """The run of ``keys``; None when nothing is to be done (said already)."""
        job = self.session.defs.resolve_job_def(self.location.inbox_job)
        assets = sorted(job.asset_layer.executable_asset_keys)
        return Request({job.name: {asset: keys for asset in assets}}, {}, self.tags(args))

    def figures(self, key: str, record: dg.RunRecord | None) -> dict[str, Any]:
        """Key figures of one partition for ``status``."""
        return {}

    def print_detail(self, key: str, as_json: bool) -> None:
        """The status of one partition (``status`` with its flag, after ``run`` and
        ``resume``): its row, unless the location says more."""
        self.print_status([key], as_json)

    def export_table(self, key: str, step: str) -> pd.DataFrame:
        """The table ``export`` writes: the asset's stored value (a record: one row)."""
        asset = dg.AssetKey.from_user_string(step)
        if asset not in self.session.asset_keys:
            raise cli.CliError(f"--step {step}: no such asset of {self.location.name}")
        value = self.session.defs.load_asset_value(
            asset, partition_key=key, instance=self.session.instance
        )
        if isinstance(value, pd.DataFrame):
            return value
        return pd.json_normalize(value if isinstance(value, list) else [value])

    def add_demo_options(self, parser: argparse.ArgumentParser) -> None:
        """The location's own options of ``demo``."""

    def demo(self, args: argparse.Namespace) -> int:
        raise NotImplementedError

    def add_verbs(self, commands: Any) -> None:
        """Verbs of the location's own (``add_verb``)."""

    def add_verb(
        self, commands: Any, name: str, text: str, func: Callable[..., int], out: bool = False
    ) -> argparse.ArgumentParser:
        """A verb of one partition (the location's flag, required), with ``--out FILE``."""
        p = commands.add_parser(name, help=text)
        p.add_argument(self.location.flag, dest="id", required=True)
        if out:
            p.add_argument("--out", required=True)
        p.set_defaults(func=func)
        return p

    # ---- the contract ------------------------------------------------------------------
    def tags(self, args: argparse.Namespace) -> dict[str, str]:
        return {CLI_TAG: f"{self.parser_prog} {args.command}"}

    def require(self, key: str) -> str:
        partitions = self.location.partitions
        assert isinstance(partitions, dg.DynamicPartitionsDefinition)
        hint = f"register it with '{self.parser_prog} submit {self.inputs}'"
        return cli.require_partition(
            self.session.instance, partitions, key, self.location.flag, hint
        )

    def register_inputs(self, args: argparse.Namespace) -> list[str]:
        """Every INPUT registered (all checked before any partition is added)."""
        paths = [Path(p) for p in args.input]
        if args.id and len(paths) > 1:
            raise cli.CliError(f"{self.location.flag} names one {self.location.item}: one input")
        try:
            keys = [self.register(self.session.store, path, args.id) for path in paths]
        except self.refused() as error:
            raise cli.CliError(str(error)) from None
        if len(set(keys)) < len(keys):
            raise cli.CliError(f"two inputs have the same name: one {self.location.item} each")
        partitions = self.location.partitions
        if isinstance(partitions, dg.DynamicPartitionsDefinition):
            self.session.instance.add_dynamic_partitions(partitions.name, keys)
        return keys

    def keys(self, args: argparse.Namespace) -> list[str]:
        """The partitions a ``run`` names: its INPUTs registered, or ``<flag> ID``."""
        if args.input:
            return self.register_inputs(args)
        if not args.id:
            raise cli.CliError(f"give {self.inputs or 'an input'} or {self.location.flag} ID")
        return [self.require(args.id)]

    def cmd_submit(self, args: argparse.Namespace) -> int:
        keys = self.register_inputs(args)
        print("\n".join(keys))
        return 0

    def many_runs(self, args: argparse.Namespace, keys: list[str]) -> bool:
        """Whether a ``run`` here will make several runs (then workers start early)."""
        return len(keys) > 1

    def cmd_run(self, args: argparse.Namespace) -> int:
        instance = self.session.instance  # before the workers start: it sets their environment
        args.here = args.here or not health.daemon_serves(instance)
        platform_cli.refuse_other_config(args, self.daemon_config)  # before any input registers
        keys = self.keys(args)
        if args.here and self.many_runs(args, keys) and not self.warm_before_definitions:
            _ = self.session.defs  # importing them may set variables the workers must see
        if args.here and self.many_runs(args, keys):
            backfill.warm_workers(self.location.module)
        request = self.request(args, keys)
        if request is None:
            return 0
        code = self.execute(request, args)
        if not args.here and args.no_wait:  # what was submitted is the answer
            backfill_id = self.backfill["backfill"]
            print(json.dumps({"backfill": backfill_id, "keys": keys}) if args.json else backfill_id)
        else:
            self.after_run(keys, args)
        return code

    def execute(self, request: Request, args: argparse.Namespace) -> int:
        """Run ``request`` through the daemon when one serves the instance (unless
        ``--here``), else in this process; ``self.runs`` says how each run ended (job,
        run_id, partitions, status, error). 0 when every run succeeded, else 1."""
        session, progress = self.session, cli.Progress(args.quiet)
        keys = {k for keys in request.partitions.values() for k in keys}
        if not args.here:
            backfill_id, status, self.runs = daemon.submit_and_wait(
                session, request, progress, wait=not args.no_wait
            )
            self.backfill = {"backfill": backfill_id, "status": status}
        elif len(keys) == 1 and len(request.jobs) == 1:  # one run, its steps as progress
            (key,), (name,) = keys, request.jobs
            job = session.defs.resolve_job_def(name)
            whole = set(request.partitions) == set(job.asset_layer.executable_asset_keys)
            selection = None if whole else list(request.partitions)  # None: its checks too
            result = cli.run_job(
                job, session.instance, key, selection, request.tags, request.run_config, progress
            )
            self.runs = [
                {
                    "job": name,
                    "run_id": result.run_id,
                    "partitions": key,
                    "status": "SUCCESS" if result.success else "FAILURE",
                    "error": ""
                    if result.success
                    else runstats.run_failure(session.instance, result.run_id),
                }
            ]
        else:
            runs = backfill.run_in_process(
                self.location.module,
                session.defs,
                session.instance,
                request.jobs,
                request.tags,
                progress,
                request.run_config,
            )
            progress.done()
            self.runs = [{**r, "status": "SUCCESS" if r["success"] else "FAILURE"} for r in runs]
        return 0 if all(r["status"] == "SUCCESS" for r in self.runs) else 1

    def what(self, run: Mapping[str, Any]) -> str:
        """A run's subject in messages: ``batch b1`` (a one-partition range ``b1..b1`` too)."""
        return f"{self.location.item} {single(run['partitions'])}"

    def report_runs(self, args: argparse.Namespace) -> None:
        """One line per run that did not succeed (stderr); for a single run that did, one
        line saying so (stdout, but with --json, where stdout holds one JSON document)."""
        for run in self.runs:
            if run["status"] != "SUCCESS":
                what, run_id = self.what(run), run["run_id"] or "-"
                print(f"{what}: FAILED (run {run_id}): {run['error']}", file=sys.stderr)
        if len(self.runs) == 1 and self.runs[0]["status"] == "SUCCESS" and not args.json:
            print(f"{self.what(self.runs[0])}: succeeded (run {self.runs[0]['run_id']})")

    def after_run(self, keys: list[str], args: argparse.Namespace) -> None:
        """What a finished ``run`` prints: how its runs ended, then the status of ``keys``
        (with --json, that status is the one document on stdout)."""
        self.report_runs(args)
        if len(keys) == 1:
            self.print_detail(keys[0], args.json)
        else:
            self.print_status(keys, args.json)

    def status_rows(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        if not keys:  # nothing registered: no need to load the location
            return []
        last = self.session.last_runs()
        return [
            {
                self.location.item: key,
                **runstats.run_summary(last.get(key)),
                **self.figures(key, last.get(key)),
            }
            for key in keys
        ]

    def print_status(self, keys: Sequence[str], as_json: bool) -> None:
        columns = [self.location.item, "status", *self.status_columns, "last_run"]
        cli.print_rows(self.status_rows(keys), columns, as_json)

    def all_keys(self) -> list[str]:
        partitions = self.location.partitions
        assert isinstance(partitions, dg.DynamicPartitionsDefinition)
        return sorted(self.session.instance.get_dynamic_partitions(partitions.name))

    def cmd_status(self, args: argparse.Namespace) -> int:
        if args.id:
            self.print_detail(self.require(args.id), args.json)
        else:
            self.print_status(self.all_keys(), args.json)
        return 0

    def last_run(self, key: str) -> dg.RunRecord | None:
        runs = self.session.runs_of(key)
        return max(runs, key=lambda r: r.create_timestamp, default=None)

    def cmd_resume(self, args: argparse.Namespace) -> int:
        key = self.require(args.id)
        what = f"{self.location.item} {key}"
        code = cli.resume(
            self.session.instance, self.location.module, self.last_run(key), what, args.json
        )
        self.print_detail(key, args.json)
        return code

    def cmd_export(self, args: argparse.Namespace) -> int:
        key, out = self.require(args.id), table_path(args.out)
        step = args.step or self.export_step
        try:
            table = self.export_table(key, step)
        except (dg.Failure, FileNotFoundError) as error:
            message = error.description if isinstance(error, dg.Failure) else str(error)
            raise cli.CliError(
                f"{self.location.item} {key} has no {step} yet ({message})"
            ) from None
        write_table(table, out)
        print(f"{step} of {self.location.item} {key}: {len(table)} rows -> {out}")
        return 0

    # ---- the parser --------------------------------------------------------------------
    parser_prog = ""

    def parser(self, prog: str, description: str) -> argparse.ArgumentParser:
        self.parser_prog = prog
        root = argparse.ArgumentParser(prog=prog, description=description)
        commands = root.add_subparsers(dest="command", required=True, parser_class=PlatformParser)
        flag, item = self.location.flag, self.location.item
        ids = (flag, "--id", *self.id_aliases)
        if self.inputs or self.submits:
            p = commands.add_parser("submit", help=f"register {self.inputs} as a {item}, no run")
            if self.inputs:
                p.add_argument("input", nargs="+" if self.many_inputs else 1, metavar=self.inputs)
            p.add_argument(*ids, dest="id", help=f"the {item}'s name (default: the input's)")
            self.add_partition_options(p, "submit")
            p.set_defaults(func=self.cmd_submit, input=[])
        p = commands.add_parser("run", help=f"register if needed, then run a {item}")
        if self.inputs:
            p.add_argument("input", nargs="*", metavar=self.inputs)
        p.add_argument(*ids, dest="id", help=f"the {item} to run (with an input: its name)")
        self.add_partition_options(p, "run")
        self.add_run_options(p)
        add_run_flags(p)
        p.set_defaults(func=self.cmd_run, input=[])
        p = commands.add_parser("status", help=f"per {item}: last run, state, key figures")
        p.add_argument(flag, dest="id")
        self.add_partition_options(p, "status")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=self.cmd_status)
        p = commands.add_parser("resume", help="re-execute the last failed run from its failure")
        p.add_argument(flag, dest="id", required=True)
        p.add_argument("--json", action="store_true", help="the status after it, as JSON")
        self.add_partition_options(p, "resume")
        p.set_defaults(func=self.cmd_resume)
        p = commands.add_parser("export", help=f"a table of a {item}: .tsv, .csv or .parquet")
        p.add_argument(flag, dest="id", required=self.location.partitions is not None)
        self.add_partition_options(p, "export")
        p.add_argument("--step", help=f"the asset (default: {self.export_step})")
        p.add_argument("--out", required=True)
        p.set_defaults(func=self.cmd_export)
        p = commands.add_parser("demo", help="write demo inputs")
        p.add_argument("--out", required=True, help="folder to write them into")
        self.add_demo_options(p)
        p.set_defaults(func=self.demo)
        platform_cli.add_health_verb(commands, self.session, self.location.name)
        self.add_verbs(commands)
        return root


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Where a run goes and what it prints: --here, --no-wait, --json, --quiet."""
    parser.add_argument(
        "--here",
        "--in-process",
        dest="here",
        action="store_true",
        help="run in this process even when a daemon serves the instance",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="with a daemon: submit and return at once"
    )
    parser.add_argument("--json", action="store_true", help="results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def table_path(out: str) -> Path:
    """``--out``, whose extension names the format (CliError if it names none)."""
    path = Path(out)
    if path.suffix.lower() not in TABLE_WRITERS:
        raise cli.CliError(
            f"--out {path}: the format comes from the extension: .tsv, .csv or .parquet"
        )
    return path


def write_table(table: pd.DataFrame, out: Path) -> None:
    """``table`` in the format of ``out``'s extension, atomically."""
    writer = TABLE_WRITERS[out.suffix.lower()]
    atomic_write(out, lambda tmp: writer(table, tmp))


def single(partitions: str) -> str:
    """``k`` for a run's partitions ``k`` or ``k..k``; a range ``a..b`` as it is."""
    first, _, last = partitions.partition("..")
    return first if last in ("", first) else partitions
