"""CLI plumbing shared by every location: instance, runs, tables, JSON, exit codes.

Every command works on the Dagster instance the web UI reads (``$DAGSTER_HOME``), so each
run it starts, through the daemon or in its own process, appears there with its logs and
materializations.
"""

# ruff: noqa: E402 (the collector is set before the imports below)
import gc

# What exists when a CLI first imports this module (Dagster, the location's modules) lives as
# long as the process: frozen out of the garbage collector, whose full passes over it during
# the imports that follow and the command took ~0.25 s of an `omics run` that reuses every
# step (docs/benchmarks.md). Only CLI processes import this module (tests/test_imports.py).
gc.freeze()

import argparse
import importlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import dagster as dg
import yaml

from platform_core import platform_config, pool
from platform_core.confine import confined_process, user_process
from platform_core.errors import CliError
from platform_core.keys import InvalidKeyError, validate_partition_key
from platform_core.runstats import run_failure
from platform_core.storage import DEFAULT_DAGSTER_HOME

# The full event log is in the instance (``logs`` command, web UI); the console shows problems.
CONSOLE_LOG_LEVEL = os.environ.get("PLATFORM_CONSOLE_LOG_LEVEL", "WARNING")
REPO_INSTANCE_CONFIG = Path(__file__).resolve().parent.parent / "dagster.yaml"


def quiet_warnings() -> None:
    """Keep Dagster's beta/supersession notices out of CLI output (they are for developers)."""
    for name in ("BetaWarning", "PreviewWarning", "SupersessionWarning"):
        category = getattr(dg, name, None)
        if category is not None:
            warnings.filterwarnings("ignore", category=category)


quiet_warnings()  # before any location module is imported by a CLI


class Progress:
    """Progress of long CLI work on stderr: one updating line on a terminal, otherwise (logs,
    CI) a plain line whenever the message changes; nothing with ``quiet``. Each line carries
    the elapsed time."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet, self.started = quiet, time.monotonic()
        self.tty, self.last = sys.stderr.isatty(), ""

    def __call__(self, message: str) -> None:
        if self.quiet or (message == self.last and not self.tty):  # logs: changes only
            return
        self.last = message
        line = f"[{time.monotonic() - self.started:7.1f} s] {message}"
        if self.tty:
            print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def done(self) -> None:
        """End the updating line (before other output)."""
        if self.tty and not self.quiet:
            print(file=sys.stderr, flush=True)


def console(main: Callable[[], int]) -> Callable[[], NoReturn]:
    """``main`` as a console command whose exit is quick: once it returns, the pool's idle
    workers are killed instead of each tearing down its interpreter, and every object is
    frozen out of the garbage collector (``gc.freeze``), whose passes over a backfill's
    objects made up most of the ~1.4 s the interpreter took to exit."""

    def command() -> NoReturn:
        try:
            code = main()
        finally:
            pool.kill_workers()
            gc.freeze()
        sys.exit(code)

    return command


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def dispatch(args: argparse.Namespace) -> int:
    """Run the sub-command ``args.func`` as the user's own process (its runs here read the
    user's paths and code unconfined); a CliError, or a file the command cannot read or
    write (OSError), or a bad platform config (ConfigError), becomes one line on stderr, exit
    2. ``args.platform_config``, when set, is the run's platform config file."""
    try:
        if getattr(args, "platform_config", None):
            platform_config.use_file(args.platform_config)
        with user_process():
            return int(args.func(args))
    except BrokenPipeError:  # stdout closed by the reader (| head): not an input error
        raise
    except (CliError, OSError, platform_config.ConfigError) as exc:
        fail(str(exc))


def instance() -> dg.DagsterInstance:
    """The persistent instance at ``$DAGSTER_HOME`` (default ``./.dagster_home``, created with
    the repository's ``dagster.yaml``)."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and REPO_INSTANCE_CONFIG.exists():
        shutil.copyfile(REPO_INSTANCE_CONFIG, config)
    return dg.DagsterInstance.get()


def scratch_instance(temp_dir: str) -> AbstractContextManager[dg.DagsterInstance]:
    """A throw-away instance (tests, benchmarks) with the repository's storage settings."""
    storage = yaml.safe_load(REPO_INSTANCE_CONFIG.read_text())["storage"]
    return dg.instance_for_test(temp_dir=temp_dir, overrides={"storage": storage})


def run_job(
    job: dg.JobDefinition,
    inst: dg.DagsterInstance,
    partition_key: str | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    progress: "Progress | None" = None,
) -> dg.ExecuteInProcessResult:
    """One in-process run recorded in ``inst`` (so it shows in the UI); console shows problems.
    With ``progress``, a line every second: steps done / total and the steps running."""
    quiet_console = {"loggers": {"console": {"config": {"log_level": CONSOLE_LOG_LEVEL}}}}
    run_id, total = str(uuid.uuid4()), len(asset_selection or job.graph.node_dict)
    stop = threading.Event()
    watcher = None
    if progress is not None:  # a line every second until the run ends
        watcher = threading.Thread(
            target=_watch_steps, args=(inst, run_id, total, progress, stop), daemon=True
        )
        watcher.start()
    try:
        return job.execute_in_process(
            instance=inst,
            partition_key=partition_key,
            tags=dict(tags or {}),
            asset_selection=list(asset_selection) if asset_selection else None,
            run_config={**quiet_console, **(run_config or {})},
            raise_on_error=False,
            run_id=run_id,
        )
    finally:
        stop.set()
        if watcher is not None and progress is not None:
            watcher.join()
            _report_steps(inst, run_id, total, progress)  # how it ended
            progress.done()


def _report_steps(inst: dg.DagsterInstance, run_id: str, total: int, progress: "Progress") -> None:
    """A run's steps done and running, read from the instance as the UI reads them."""
    stats = inst.get_run_step_stats(run_id)
    done = sum(1 for s in stats if s.end_time)
    running = ", ".join(s.step_key for s in stats if not s.end_time)
    progress(f"steps {done}/{total} done" + (f", running {running}" if running else ""))


def _watch_steps(
    inst: dg.DagsterInstance, run_id: str, total: int, progress: "Progress", stop: threading.Event
) -> None:
    while not stop.wait(1.0):
        _report_steps(inst, run_id, total, progress)


def report(
    inst: dg.DagsterInstance,
    result: dg.ExecuteInProcessResult | dg.JobExecutionResult,
    what: str,
    as_json: bool = False,
) -> int:
    """One line on how a run ended (stdout on success, stderr on failure, or both on stderr
    when stdout holds a JSON document); the exit code."""
    if result.success:
        print(
            f"{what}: succeeded (run {result.run_id})", file=sys.stderr if as_json else sys.stdout
        )
        return 0
    message = run_failure(inst, result.run_id)
    print(f"{what}: FAILED (run {result.run_id}): {message}", file=sys.stderr)
    return 1


def resume(
    inst: dg.DagsterInstance,
    module: str,
    last: dg.RunRecord | None,
    what: str,
    as_json: bool = False,
) -> int:
    """Re-execute ``last`` (a failed run of a job in ``<module>.defs``) from its failed
    steps: steps that succeeded are not run again. Its tags (partition, mode) are kept. It
    runs confined: its run config is the first run's, which the UI may have set (any tag
    included), so it is not the user's own."""
    if last is None:
        raise CliError(f"{what} has never run")
    if last.dagster_run.status != dg.DagsterRunStatus.FAILURE:
        raise CliError(
            f"the last run of {what} ({last.dagster_run.run_id[:8]}) is "
            f"{last.dagster_run.status.value}, not failed: nothing to resume"
        )
    job = dg.build_reconstructable_job(
        "platform_core.cli",
        "location_job",
        reconstructable_args=(module, last.dagster_run.job_name),
    )
    options = dg.ReexecutionOptions.from_failure(last.dagster_run.run_id, inst)
    # execute_job does not carry the parent's tags over: pass them (not run-lineage tags)
    tags = {k: v for k, v in last.dagster_run.tags.items() if not k.startswith("dagster/run")}
    with (
        confined_process(),
        dg.execute_job(job, inst, tags=tags, reexecution_options=options) as result,
    ):
        what = f"{what} resumed from run {last.dagster_run.run_id[:8]}"
        return report(inst, result, what, as_json)


def location_job(module: str, job_name: str) -> dg.JobDefinition:
    """Job ``job_name`` of ``<module>.defs`` (rebuilt by name where a run is re-executed)."""
    return importlib.import_module(module).defs.resolve_job_def(job_name)


def require_partition(
    inst: dg.DagsterInstance,
    partitions_def: dg.DynamicPartitionsDefinition,
    key: str,
    flag: str,
    hint: str,
) -> str:
    """``key`` if it is a safe, registered partition; otherwise a CliError naming ``flag`` and
    what to do (``hint``)."""
    try:
        validate_partition_key(key)
    except InvalidKeyError as error:
        raise CliError(f"{flag}: {error}") from None
    if not inst.has_dynamic_partition(partitions_def.name, key):
        raise CliError(f"unknown {flag.lstrip('-')} {key!r}; {hint}")
    return key


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def print_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    """``rows`` as JSON (every field) for scripts, or as a table of ``columns`` for people."""
    if as_json:
        print_json(rows)
    else:
        print_table(rows, columns)


def run_logs(inst: dg.DagsterInstance, run_id: str, tail: int) -> list[str]:
    lines = []
    for entry in inst.all_logs(run_id)[-tail:]:
        when = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
        kind = entry.dagster_event.event_type.name if entry.dagster_event else entry.level
        message = entry.message or (entry.dagster_event.message if entry.dagster_event else "")
        lines.append(f"{when}  {entry.step_key or '-':<28} {kind:<22} {message}")
    return lines
