"""Benchmark: the start-up of ``omics run`` when every step is reused (nothing to compute),
beside ``python -c "import dagster"``: the platform's fixed cost over Dagster's own.

    .venv/bin/python bench/omics_startup.py [--workflow gwas] [--runs 7] [--param K=V ...]

On a fresh instance and data root (a temporary folder; ``--keep DIR`` keeps them in DIR), one
``omics run`` computes the workflow's steps (not timed); then the two commands run in turn,
one warm-up each and ``--runs`` timed pairs: whole processes, from their start to their exit.
Printed: per command the min / median / max wall seconds, and the median of the pairwise ratios
omics / import dagster (pairing keeps the ratio meaningful on a shared, noisy machine).
Target (issue 31): a ratio of at most ~2.7.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
OMICS = ROOT / ".venv" / "bin" / "omics"


def wall(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from the command's start to its exit (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def bench(folder: Path, workflow: str, params: list[str], runs: int) -> dict[str, list[float]]:
    home, data = folder / "home", folder / "data"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "PLATFORM_DATA_ROOT": str(data)}
    omics = [str(OMICS), "run", "--workflow", workflow, *(f"--param={p}" for p in params)]
    dagster = [str(PYTHON), "-c", "import dagster"]
    print(f"computing the steps once: {' '.join(omics[1:])}", file=sys.stderr)
    print(f"  {wall(omics, env):.1f} s", file=sys.stderr)
    times: dict[str, list[float]] = {"omics": [], "dagster": []}
    for index in range(runs + 1):  # the first pair warms up, not counted
        pair = {"omics": wall(omics, env), "dagster": wall(dagster, env)}
        if index:
            for name, seconds in pair.items():
                times[name].append(seconds)
    return times


def report(times: dict[str, list[float]], workflow: str) -> None:
    ratios = [a / b for a, b in zip(times["omics"], times["dagster"], strict=True)]
    rows = [
        (f"omics run --workflow {workflow} (every step reused)", times["omics"]),
        ('python -c "import dagster"', times["dagster"]),
        ("ratio omics / import dagster (pairwise)", ratios),
    ]
    print(f"{'wall seconds':<52} {'min':>7} {'median':>7} {'max':>7}")
    for label, values in rows:
        print(f"{label:<52} {min(values):7.3f} {median(values):7.3f} {max(values):7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflow", default="gwas")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="the instance and data root here")
    args = parser.parse_args()
    if args.keep:
        times = bench(args.keep, args.workflow, args.param, args.runs)
    else:
        with tempfile.TemporaryDirectory(prefix="omics-startup-") as scratch:
            times = bench(Path(scratch), args.workflow, args.param, args.runs)
    report(times, args.workflow)


if __name__ == "__main__":
    main()
