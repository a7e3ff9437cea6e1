"""Benchmark: the start-up of a cardio stage worker (one per run process, before its first
stage), seconds from "start" to "ready":

- ``worker``: the shipped worker (``python -m cardio_assets.stage_worker``), which imports
  ``cardio_assets.stage_work`` only (the science: numpy, scipy, pydicom, wfdb, neurokit2,
  matplotlib);
- ``spawn+defs``: the first version, for comparison: a multiprocessing spawn child that
  imports the location's asset modules (Dagster and the whole location) and, spawned from
  the ``cardio`` console script, re-runs that script first (this script does the same: it
  imports ``cardio_assets.cli`` at the top, as the console script does).

The two alternate, ``--repeats`` times each, so both see the same machine load.

    .venv/bin/python bench/cardio_worker_start.py [--repeats 7]
"""

import argparse
import importlib
import multiprocessing
import time
from multiprocessing.connection import Connection
from statistics import median

from cardio_assets.cli import console_main  # noqa: F401  (as the console script: see above)
from cardio_assets.stage_worker import StageWorker

FIRST_VERSION_IMPORTS = tuple(
    f"cardio_assets.defs.assets.{name}" for name in ("study", "ecg", "echo", "report")
)


def _first_version_worker(connection: Connection) -> None:
    for module in FIRST_VERSION_IMPORTS:
        importlib.import_module(module)
    connection.send("ready")


def start_worker() -> float:
    worker = StageWorker()
    started = time.perf_counter()
    worker._start()  # what run() does before the first stage
    seconds = time.perf_counter() - started
    worker.stop()
    return seconds


def start_first_version() -> float:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    started = time.perf_counter()
    process = context.Process(target=_first_version_worker, args=(theirs,), daemon=True)
    process.start()
    ours.recv()
    seconds = time.perf_counter() - started
    process.kill()
    process.join()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"worker": [], "spawn+defs": []}
    for _ in range(args.repeats):
        runs["worker"].append(start_worker())
        runs["spawn+defs"].append(start_first_version())
    for name, seconds in runs.items():
        shown = " ".join(f"{s:.2f}" for s in seconds)
        print(f"{name:10s} median {median(seconds):.2f} s  min {min(seconds):.2f} s  ({shown})")
    print(f"saved per run process: {median(runs['spawn+defs']) - median(runs['worker']):.2f} s")


if __name__ == "__main__":
    main()
