"""Benchmark: N demo studies (10-s 12-lead ECG + 120-frame echo) through the whole cardio
graph on this machine's cores, through the real ``cardio run`` CLI, in its modes side by side
in one run (the machine is shared: compare ratios).

    .venv/bin/python bench/cardio_pipeline.py [--studies 100] [--modes in-process,daemon]
                                              [--limits on] [--cache DIR]

- ``in-process``: no daemon serves the instance; ``cardio run DIR...`` runs one Dagster run
  per study here, on every core (warm worker processes);
- ``daemon``: ``dagster-daemon`` serves the instance; the same command submits one Dagster
  backfill of the studies, and the run queue (2 runs at once) launches a run process per study.

``--limits on,off`` runs each mode twice: with the stage time limits (the default: each
stage's work in the run process's stage worker) and without (``CARDIO_STAGE_TIMEOUT_S=0``:
in the run process), and prints the ratio of their wall times.

Per mode: wall time of the command, studies per minute, per-stage time (each asset's
``elapsed_ms``, the compute inside the step), the peak memory (VmHWM) of each process the
command started, and the orchestration cost: wall time x cores / the sum of the stage compute
(1.0 would be every core busy with science all the time), and per run: the runs' durations
over their stage compute. Then ECG processing speed: the ECG
branch's science on one core against the records' duration (real time factor).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.daemon import serving_daemon  # noqa: E402
from cardio_assets.demo import demo  # noqa: E402
from platform_core.cli import quiet_warnings  # noqa: E402


def environment(scratch: Path) -> dict[str, str]:
    """A fresh instance (the repository's dagster.yaml) and data root."""
    home = scratch / "home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    return {**os.environ, "DAGSTER_HOME": str(home), "PLATFORM_DATA_ROOT": str(scratch / "data")}


def _descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        found = [int(c) for c in children.read_text().split()]
    except OSError:
        return []
    return found + [d for c in found for d in _descendants(c)]


def _run_processes() -> list[int]:
    """Every ``dagster api execute_run`` process (the daemon's code server launches them in
    a session of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"execute_run" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _peak_mb(pid: int) -> float | None:
    """A process's peak resident memory so far (VmHWM), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _role(pid: int, root: int, root_role: str) -> str:
    """What a process is: the CLI, a worker (a pool worker or a run process of the daemon:
    runs studies), a stage worker (a run process's stage time limits), or a helper (resource
    tracker, code server, the daemon)."""
    if pid == root:
        return root_role
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "helper"
    if "cardio_assets.stage_worker" in command:
        return "stage worker"
    return "worker" if "spawn_main" in command or "execute_run" in command else "helper"


def watch_memory(
    pid: int, root_role: str, peaks: dict[tuple[str, int], float], stop: threading.Event
) -> None:
    """Every 0.2 s, the peak memory (MB) of ``pid`` and each of its descendants, by role."""
    roles: dict[int, str] = {}
    while not stop.wait(0.2):
        for p in [pid, *_descendants(pid), *(_run_processes() if root_role == "daemon" else [])]:
            role = roles.setdefault(p, _role(p, pid, root_role))
            if (mb := _peak_mb(p)) is not None:
                peaks[role, p] = max(peaks.get((role, p), 0.0), mb)


def cardio_run(
    env: dict[str, str], folders: list[Path], *flags: str, daemon: int | None = None
) -> tuple[float, list | dict, dict]:
    """(wall seconds, JSON output, peak MB per process) of ``cardio run`` on ``folders``; the
    processes watched are the CLI's, and the ``daemon`` process's when given."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "cardio_assets.cli", "run", *map(str, folders), "--json", *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peaks: dict[tuple[str, int], float] = {}
    stop = threading.Event()
    watchers = [
        threading.Thread(target=watch_memory, args=(pid, role, peaks, stop))
        for pid, role in ((process.pid, "cli"), (daemon, "daemon"))
        if pid
    ]
    for watcher in watchers:
        watcher.start()
    out, err = process.communicate()
    stop.set()
    for watcher in watchers:
        watcher.join()
    seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"cardio run failed:\n{out[-2000:]}\n{err[-2000:]}")
    return seconds, json.loads(out[next(i for i, c in enumerate(out) if c in "[{") :]), peaks


def stage_compute(env: dict[str, str]) -> tuple[dict[str, list[float]], float, float]:
    """(each asset's ``elapsed_ms`` per study, the sum of the runs' durations and the sum of
    their steps' durations in s), from the instance."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    stages: dict[str, list[float]] = {}
    runs = steps = 0.0
    with dg.DagsterInstance.get() as inst:
        for record in inst.get_run_records():
            run_id = record.dagster_run.run_id
            runs += record.end_time - record.start_time
            steps += sum(s.end_time - s.start_time for s in inst.get_run_step_stats(run_id))
            for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
                metadata = entry.dagster_event.step_materialization_data.materialization.metadata
                if "elapsed_ms" in metadata:
                    stages.setdefault(entry.step_key, []).append(metadata["elapsed_ms"].value)
    return stages, runs, steps


def with_daemon(env: dict[str, str], folders: list[Path]) -> tuple[float, list, dict]:
    """``cardio run`` while a dagster-daemon (cardio location only) serves the instance."""
    workspace = Path(env["DAGSTER_HOME"]) / "workspace.yaml"
    locations = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    cardio = [e for e in locations if e["python_module"]["location_name"] == "cardio"]
    workspace.write_text(yaml.safe_dump({"load_from": cardio}))
    with serving_daemon(env, workspace) as daemon:
        return cardio_run(env, folders, "--quiet", daemon=daemon.pid)


def ecg_real_time(folders: list[Path]) -> tuple[float, float]:
    """(ECG seconds analysed per second of compute on one core: science only, with the strip
    plot): read, clean 12 leads, R peaks, quality, features, as the ECG branch does."""
    from cardio_assets.resources import PACKAGED_MODELS
    from cardio_assets.science import ecg, formats, plots
    from cardio_assets.science.models import load_models

    limits = load_models(PACKAGED_MODELS)["thresholds"]["ecg"]
    recorded = science = plotted = 0.0
    for folder in folders:
        path = folder / "ecg.hea"
        started = time.perf_counter()
        record = formats.read_ecg(path, formats.identify(path))
        pre = ecg.preprocess(record.signal, record.sampling_hz, record.leads)
        rhythm = pre["cleaned"][:, pre["rhythm_lead"]]
        found = ecg.features(rhythm, pre["peaks"], record.sampling_hz, limits)
        science += time.perf_counter() - started
        started = time.perf_counter()
        plots.ecg_strip_png(rhythm, record.sampling_hz, found["r_peak_times_s"], "II")
        plotted += time.perf_counter() - started
        recorded += len(rhythm) / record.sampling_hz
    return recorded / science, recorded / (science + plotted)


def report(
    title: str, studies: int, seconds: float, result: list | dict, peaks: dict, env: dict[str, str]
) -> None:
    """One command's figures: wall time, where the core-seconds went, stage times, memory."""
    stages, in_runs, in_steps = stage_compute(env)
    cores = os.cpu_count() or 1
    compute = sum(map(sum, stages.values())) / 1000.0
    runs = result["runs"] if isinstance(result, dict) else result
    print(f"\n== {title}: {studies} studies, {len(runs)} runs, {cores} cores")
    print(f"wall {seconds:.1f} s, {studies / seconds * 60:.1f} studies/min")
    print(
        f"stage compute {compute:.1f} s; per run, duration / its stage compute = "
        f"{in_runs / compute:.2f}; the whole command, wall x cores / compute = "
        f"{seconds * cores / compute:.2f}"
    )
    print(
        f"  where the core-seconds went: {seconds * cores:.0f} = {compute:.0f} stage compute"
        f" + {in_steps - compute:.0f} in steps around it (inputs, outputs, events)"
        f" + {in_runs - in_steps:.0f} in runs between steps"
        f" + {seconds * cores - in_runs:.0f} outside runs (start-up, launching, idle cores)"
    )
    for step, values in sorted(stages.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {step:22} median {median(values):7.1f} ms, total {sum(values) / 1000:6.1f} s")
    for role in ("cli", "worker", "stage worker"):
        if mbs := [mb for (r, _), mb in peaks.items() if r == role]:
            print(
                f"peak memory, {role}: {len(mbs)} processes, median {median(mbs):.0f} MB, "
                f"max {max(mbs):.0f} MB"
            )


def main() -> None:
    quiet_warnings()
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=100)
    parser.add_argument("--modes", default="in-process,daemon")
    parser.add_argument("--limits", default="on", help="on, off or on,off (see above)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "cardio_bench"))
    args = parser.parse_args()
    limits = args.limits.split(",")
    if not set(limits) <= {"on", "off"}:
        parser.error(f"--limits: on, off or on,off, not {args.limits}")
    cache = Path(args.cache) / f"studies_{args.studies}"
    if not cache.exists():
        demo(cache.with_suffix(".part"), "bench", args.studies)
        cache.with_suffix(".part").rename(cache)
    folders = sorted(p for p in cache.iterdir() if p.is_dir())
    walls: dict[tuple[str, str], float] = {}
    for mode in args.modes.split(","):
        for limit in limits:
            with tempfile.TemporaryDirectory() as tmp:
                env = environment(Path(tmp))
                if limit == "off":
                    env["CARDIO_STAGE_TIMEOUT_S"] = "0"
                if mode == "daemon":
                    seconds, result, peaks = with_daemon(env, folders)
                else:
                    seconds, result, peaks = cardio_run(env, folders, "--in-process", "--quiet")
                report(f"{mode}, stage limits {limit}", len(folders), seconds, result, peaks, env)
            walls[mode, limit] = seconds
        if len(limits) == 2:
            ratio = walls[mode, "on"] / walls[mode, "off"]
            print(f"\n{mode}: wall with stage limits / without = {ratio:.2f}")
    per_core, with_plot = ecg_real_time(folders)
    print(
        f"\nECG on one core: {per_core:.0f}x real time (science), {with_plot:.0f}x with the "
        "strip plot"
    )


if __name__ == "__main__":
    main()
