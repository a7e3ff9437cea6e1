"""Benchmark: does running a study's ECG and echo branches side by side pay on this machine?
The demo studies, one run at a time, in one process, side by side:

- ``serial``: the shipped study job (in-process executor, steps one after another, each
  stage's work in the run's warm stage worker);
- ``parallel``: the same assets under Dagster's multiprocess executor (2 at once), so the
  ECG and echo branches run as separate step processes until fusion (the barrier);
- the branches' work alone: the ECG branch then the echo branch in one warm worker, against
  both at once in two warm workers (the best any parallel path could do).

    .venv/bin/python bench/cardio_branches.py [--rounds 1]

Prints wall seconds per study and the ratio parallel / serial (below 1: parallel pays). The
multiprocess executor's step processes log every engine event at DEBUG: their stderr goes to
``parallel.log`` in the scratch folder (its path is printed), so the figures stay readable.
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRATCH = Path(tempfile.mkdtemp(prefix="cardio-branches-"))
os.environ.setdefault("DAGSTER_HOME", str(SCRATCH / "home"))
os.environ.setdefault("PLATFORM_DATA_ROOT", str(SCRATCH / "data"))
Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
(Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())

import dagster as dg  # noqa: E402

from cardio_assets import stage_work  # noqa: E402
from cardio_assets.defs.assets.common import models  # noqa: E402
from cardio_assets.demo import demo  # noqa: E402
from cardio_assets.inputs import register_study, study_folder  # noqa: E402
from cardio_assets.location import LOCATION  # noqa: E402
from cardio_assets.partitions import GROUP  # noqa: E402
from cardio_assets.resources import CardioConfig  # noqa: E402
from cardio_assets.stage_worker import StageWorker  # noqa: E402
from platform_core import cli  # noqa: E402
from platform_core.io import write_array  # noqa: E402


def parallel_job() -> dg.JobDefinition:
    """The study job under the multiprocess executor (reconstructable: module level)."""
    job = dg.define_asset_job(
        "cardio_study_parallel",
        selection=dg.AssetSelection.groups(GROUP),
        executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}),
    )
    return dg.Definitions.merge(LOCATION.definitions(), dg.Definitions(jobs=[job])).resolve_job_def(
        job.name
    )


def run_serial(study: str) -> float:
    job = LOCATION.definitions().resolve_job_def("cardio_study")
    started = time.perf_counter()
    assert cli.run_job(job, cli.instance(), partition_key=study).success, study
    return time.perf_counter() - started


@contextmanager
def stderr_to(log: Path) -> Iterator[None]:
    """This process's stderr, and its step processes', appended to ``log`` for the block."""
    saved = os.dup(2)
    with log.open("ab") as file:
        os.dup2(file.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def run_parallel(study: str) -> float:
    started = time.perf_counter()
    with stderr_to(SCRATCH / "parallel.log"):
        result = dg.execute_job(
            dg.reconstructable(parallel_job),
            cli.instance(),
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={"dagster/partition": study},
        )
    assert result.success, f"{study}: see {SCRATCH / 'parallel.log'}"
    return time.perf_counter() - started


def modalities(key: str) -> dict[str, dict]:
    """The study's files by modality, recognised as its validation does."""
    folder = study_folder(LOCATION.store(), key)
    files = [{"name": p.name, "sha256": ""} for p in sorted(folder.path.iterdir())]
    return stage_work.validate(folder, files)[0]


def branch_work(key: str, workers: list[StageWorker]) -> float:
    """The ECG branch and the echo branch of study ``key`` on ``workers`` (one: one after the
    other; two: side by side); wall seconds."""
    cardio, found = CardioConfig(), modalities(key)
    folder = study_folder(LOCATION.store(), key)
    limits = models(cardio)

    def ecg_branch(worker: StageWorker) -> None:
        pre, cleaned = worker.run("ecg", key, 600, stage_work.ecg_preprocess, folder, found["ecg"])
        signal = SCRATCH / "branches" / f"{key}-cleaned.npy"
        write_array(signal, cleaned)
        pre["signal_path"] = str(signal)
        worker.run("ecg", key, 600, stage_work.ecg_analyse, pre, limits["thresholds"]["ecg"])

    def echo_branch(worker: StageWorker) -> None:
        batching = (cardio.echo_batch_frames, cardio.max_batch_mb, 0)
        name = found["echo"]["file"]
        pre, *arrays = worker.run(
            "echo", key, 600, stage_work.echo_preprocess, folder, name, batching
        )
        for array, part in zip(arrays, ("frames", "fan"), strict=True):
            pre[f"{part}_path"] = str(SCRATCH / "branches" / f"{key}-{part}.npy")
            write_array(Path(pre[f"{part}_path"]), array)
        det, masks = worker.run("echo", key, 600, stage_work.detect, pre, limits["lv_template"])
        if masks is not None:
            det["masks_path"] = str(SCRATCH / "branches" / f"{key}-masks.npy")
            write_array(Path(det["masks_path"]), masks)
            thresholds = limits["thresholds"]["echo"]
            worker.run("echo", key, 600, stage_work.lv_function, det, pre, thresholds)

    started = time.perf_counter()
    if len(workers) == 1:
        ecg_branch(workers[0])
        echo_branch(workers[0])
    else:
        with ThreadPoolExecutor(2) as threads:
            for done in [
                threads.submit(ecg_branch, workers[0]),
                threads.submit(echo_branch, workers[1]),
            ]:
                done.result()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    store = LOCATION.store()
    studies = []
    for folder in demo(SCRATCH / "demo"):
        studies.append(register_study(store, folder))
        cli.instance().add_dynamic_partitions("cardio_study", [studies[-1]])
    full = [s for s in studies if {"ecg", "echo"} <= set(modalities(s))]
    workers = [StageWorker(), StageWorker()]
    branch_work(full[0], workers[:1])  # warm both workers and the run process
    branch_work(full[0], workers)
    run_serial(full[0])
    print(f"step process logs of the parallel runs: {SCRATCH / 'parallel.log'}", flush=True)
    rows = []
    for _ in range(args.rounds):
        for study in studies:
            serial, parallel = run_serial(study), run_parallel(study)
            rows.append((study, serial, parallel))
            print(
                f"{study:16s} serial {serial:6.2f} s  parallel {parallel:6.2f} s  "
                f"ratio {parallel / serial:.2f}",
                flush=True,
            )
    branches = [(branch_work(s, workers[:1]), branch_work(s, workers)) for s in full]
    for study, (one, two) in zip(full, branches, strict=True):
        print(
            f"{study:16s} branches: one worker {one:5.2f} s  two {two:5.2f} s  "
            f"ratio {two / one:.2f}"
        )
    print(f"median run ratio parallel / serial: {median(p / s for _, s, p in rows):.2f}")
    print(f"median branch-work ratio two / one worker: {median(t / o for o, t in branches):.2f}")
    for worker in workers:
        worker.stop()


if __name__ == "__main__":
    main()
