"""Benchmark: the 5-year, N-symbol Tetra backfill through the real ``tetra backfill`` CLI, in
its modes, side by side in one run (the machine is shared: compare ratios).

    .venv/bin/python bench/tetra_backfill.py [--symbols 100] [--previous COMMIT]
        [--modes in-process,daemon,previous,science] [--rounds N]

- ``in-process``: no daemon serves the instance, the CLI runs the backfill itself (cut by the
  partition mappings and backfill policies, runs side by side on every core);
- ``daemon``: ``dagster-daemon`` serves the same kind of instance (SQLite, the repository's
  dagster.yaml), the CLI submits a Dagster backfill and waits for it;
- ``stock``: in-process on Dagster's stock SQLite storage with its own event batching
  (``DAGSTER_EVENT_BATCH_SIZE``), against platform_core.storage's batched event log;
- ``previous``: the CLI of ``--previous`` (a git commit, checked out into a temporary
  worktree) in-process, as the figure this change is compared with;
- ``science``: the same science functions on the same data in a plain Python loop, no Dagster
  (``bench/tetra_science.py``), run as a command like the CLI (interpreter start and imports
  count on both sides): the orchestration cost is in-process / science;
- ``science-warm``: the same in this process, its imports done (the definition before
  2026-11-29 evening; ~3 s less).

Every mode starts from an empty instance and data root, 2019-01-01 .. 2023-12-29, synthetic
symbols (the data of every mode is identical).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
START, END = "2019-01-01", "2023-12-29"
sys.path.insert(0, str(ROOT))

from bench.daemon import serving_daemon  # noqa: E402


def environment(scratch: Path, symbols: int, stock_storage: bool = False) -> dict[str, str]:
    """A fresh instance with the repository's dagster.yaml (``stock_storage``: Dagster's own
    SQLite storage instead of platform_core.storage, with Dagster's event batching on)."""
    home = scratch / "home"
    home.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    if stock_storage:
        config["storage"] = {"sqlite": {"base_dir": str(home / "storage")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PLATFORM_DATA_ROOT": str(scratch / "data"),
        "TETRA_PROVIDER": "synthetic",
        "TETRA_SYNTHETIC_COUNT": str(symbols),
        **({"DAGSTER_EVENT_BATCH_SIZE": "1000"} if stock_storage else {}),
    }


def backfill(checkout: Path, env: dict[str, str], *flags: str) -> tuple[float, dict | list]:
    """Wall seconds of ``tetra backfill`` over the 5 years (the CLI of ``checkout``) and its
    JSON report: the runs (in-process), or the backfill and its runs (daemon)."""
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tetra_assets.cli",
            "backfill",
            "--start",
            START,
            "--end",
            END,
            "--json",
            *flags,
        ],
        cwd=checkout,
        env={**env, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(f"backfill failed in {checkout}:\n{result.stdout}\n{result.stderr}")
    report = next(i for i, char in enumerate(result.stdout) if char in "[{")  # after any notice
    return seconds, json.loads(result.stdout[report:])


def with_daemon(env: dict[str, str]) -> tuple[float, dict]:
    """The backfill submitted to a dagster-daemon serving the instance."""
    with serving_daemon(env, ROOT / "workspace.yaml"):
        return backfill(ROOT, env, "--quiet")


def previous_checkout(commit: str, scratch: Path) -> Path:
    tree = scratch / "previous"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), commit],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return tree


def measure(modes: list[str], symbols: int, previous: str, scratch: Path) -> dict[str, float]:
    """One round: each mode once, from an empty instance and data root, in ``modes`` order."""
    figures: dict[str, float] = {}
    if "science" in modes:  # a command, as the CLI: interpreter start and imports count
        started = time.perf_counter()
        command = ["-m", "bench.tetra_science", "--symbols", str(symbols)]
        subprocess.run(
            [sys.executable, *command, "--start", START, "--end", END],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        figures["science"] = time.perf_counter() - started
        print(f"science only (no Dagster), as a command: {figures['science']:.1f} s")
    if "science-warm" in modes:  # in this process, its imports already done
        from bench.tetra_science import bare_backfill

        started = time.perf_counter()
        bare_backfill(symbols, START, END)
        figures["science-warm"] = time.perf_counter() - started
        print(f"science only (no Dagster), imports done: {figures['science-warm']:.1f} s")
    if "in-process" in modes:
        seconds, runs = backfill(ROOT, environment(scratch / "local", symbols), "--in-process")
        figures["in-process"] = seconds
        jobs = [r["job"] for r in runs]
        print(
            f"in-process: {seconds:.1f} s ({jobs.count('tetra_data')} data runs, "
            f"{jobs.count('tetra_weekly')} weekly runs)"
        )
    if "stock" in modes:
        env = environment(scratch / "stock", symbols, stock_storage=True)
        figures["stock"], _ = backfill(ROOT, env, "--in-process")
        print(f"in-process, stock SQLite storage + event batching: {figures['stock']:.1f} s")
    if "daemon" in modes:
        seconds, report = with_daemon(environment(scratch / "daemon", symbols))
        figures["daemon"] = seconds
        print(f"daemon backfill {report['backfill']}: {seconds:.1f} s, {len(report['runs'])} runs")
    if "previous" in modes:
        tree = previous_checkout(previous, scratch)
        try:
            seconds, runs = backfill(tree, environment(scratch / "previous_run", symbols))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
        figures["previous"] = seconds
        print(f"previous ({previous}) in-process: {seconds:.1f} s, {len(runs)} runs")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--previous", default="7680637", help="commit to compare with")
    parser.add_argument("--modes", default="in-process,stock,daemon,previous,science")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of every mode; ratios are per round"
    )
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {}
    # Every round's files stay until the end: deleting a round's ~15,000 files just before the
    # next round made ext4 scan past the freed inodes on each file the next round created
    # (skipped for ~30 s after deletion): twice the system time of a round on a fresh disk.
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(1, args.rounds + 1):
            print(f"round {number}/{args.rounds}")
            scratch = Path(tmp) / f"round-{number}"
            figures = measure(args.modes.split(","), args.symbols, args.previous, scratch)
            for other in ("daemon", "previous", "stock", "science", "science-warm"):
                if "in-process" in figures and other in figures:
                    ratio = figures["in-process"] / figures[other]
                    ratios.setdefault(other, []).append(ratio)
                    print(f"in-process / {other}: {ratio:.2f}")
    if args.rounds > 1:
        for other, values in ratios.items():
            print(f"in-process / {other}, median of {len(values)}: {statistics.median(values):.2f}")


if __name__ == "__main__":
    main()
