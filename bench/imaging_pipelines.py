"""Imaging pipelines benchmark: the pipeline engine as Dagster runs it against the same step
functions in a plain loop, and the engine's own cost per well-call (docs/benchmarks.md).

    .venv/bin/python bench/imaging_pipelines.py [--wells 96] [--repeats 2] [--cache DIR]
                                                [--identity-steps 11] [--profile] [--stitch]

1. ``flat_field`` (plate scope) -> ``segment_nuclei`` -> ``measure_objects`` on a
   ``write_nuclei_plate`` plate (--wells x 3 x 3 sites of 256 px, 2 channels, cached in
   --cache), interleaved: the pipeline's job in process (2 workers), the plain loop in 1
   process, and on a 2-process pool. Object counts per well must be equal (asserted).
2. Per well-call: ``apply_step`` on one well's planes in memory against the same calls by
   hand; and pipelines of 1 and --identity-steps ``identity`` steps through Dagster (1 worker):
   (difference of the pipeline step's time) / ((steps - 1) x wells).
3. ``--stitch`` only: the plate job ``imaging_plate`` once (2 workers) on the 1024 px plate of
   bench/imaging_plate.py: throughput and position errors (``--quick`` there omits them).

``--profile``: one more engine run under cProfile, top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import threadpoolctl
import tifffile

from imaging_assets.engine.apply import TILES, PlateContext, StepResult, apply_step
from imaging_assets.engine.compile import compile_pipeline
from imaging_assets.engine.spec import FunctionStep, Pipeline
from imaging_assets.science.contract import step_contract
from imaging_assets.science.illumination import flat_field
from imaging_assets.science.measure import measure_objects
from imaging_assets.science.segmentation import segment_nuclei
from imaging_assets.science.synthetic_nuclei import NUCLEI_SUFFIX, WAVE_NAMES, write_nuclei_plate

TILE_PX = 256
SITES = 9  # 3 x 3
CHANNELS = 2
WORKERS = 2
NUCLEI_CHANNEL = 1
TIFF = re.compile(r"^(?P<well>[A-P]\d\d)_s(?P<site>\d+)_w(?P<channel>\d+)\.tif$")
IDENTITY = "bench.imaging_pipelines:identity"  # importable by the engine's spawned workers
TALLY = "bench.imaging_pipelines:tally"


def identity(stack: np.ndarray) -> np.ndarray:
    """The cheapest step there is: the engine's cost is all that is left."""
    return stack


@step_contract(output="table")
def tally(stack: np.ndarray) -> pd.DataFrame:
    """One row per call: ends the identity pipelines with a table (stored as Parquet), so
    that no OME-Zarr of every site is written, which would cost more than the steps."""
    return pd.DataFrame({"planes": [len(stack)]})


def nuclei_pipeline() -> Pipeline:
    return Pipeline(
        [
            FunctionStep("illumination", "flat_field", scope="plate"),
            FunctionStep("nuclei", "segment_nuclei", {"channel": NUCLEI_CHANNEL}),
            FunctionStep(
                "cells",
                "measure_objects",
                {"labels": "nuclei", "channel": NUCLEI_CHANNEL},
                reads=["nuclei"],
            ),
        ],
        name="bench_nuclei",
    )


def identity_pipeline(steps: int) -> Pipeline:
    identities = [FunctionStep(f"id{i}", IDENTITY) for i in range(steps)]
    return Pipeline([*identities, FunctionStep("tally", TALLY)], name=f"bench_identity_{steps}")


def ensure_plate(cache: Path, wells: int) -> Path:
    name = f"nuclei_{wells}w_{TILE_PX}px"
    plate = cache / name
    if not (cache / f"{name}{NUCLEI_SUFFIX}").exists():  # written after every tile
        started = time.perf_counter()
        write_nuclei_plate(cache, name, wells, 3, TILE_PX, 0.1, CHANNELS, seed=0)
        print(
            f"generated {wells} wells x {SITES} sites x {CHANNELS} channels "
            f"({TILE_PX} px) in {time.perf_counter() - started:.0f} s"
        )
    return plate


def read_plate(plate: Path) -> dict[tuple[str, int, int], np.ndarray]:
    """Every tile, keyed (well, site, channel)."""
    tiles = {}
    for path in sorted((plate / "TimePoint_1").iterdir()):
        found = TIFF.match(path.name)
        if found:
            key = (found["well"], int(found["site"]), int(found["channel"]))
            tiles[key] = tifffile.imread(path)
    return tiles


def plain_well(
    well: str, planes: dict[tuple[int, int], np.ndarray], sites: list[int], channels: list[int]
) -> pd.DataFrame:
    """segment_nuclei on the nuclei channel of the well's sites, measure_objects per site."""
    labels = segment_nuclei(np.stack([planes[(s, NUCLEI_CHANNEL)] for s in sites]))
    names = {c: WAVE_NAMES[c - 1] for c in channels}
    tables = [
        measure_objects(
            np.stack([planes[(s, c)] for c in channels]),
            labels[i],
            channels=channels,
            channel_names=names,
            channel=NUCLEI_CHANNEL,
        ).assign(well=well, site=s)
        for i, s in enumerate(sites)
    ]
    return pd.concat(tables, ignore_index=True)


def _one_thread() -> None:
    threadpoolctl.threadpool_limits(limits=1)  # as the engine's workers (wells._one_thread_each)


def plain_loop(plate: Path, workers: int) -> dict[str, int]:
    """Objects per well; wells' segment + measure on ``workers`` processes when > 1 (a
    fresh pool, its start-up counted; its workers are killed afterwards, uncounted, as the
    engine's are: the CLI kills its idle workers at exit)."""
    tiles = read_plate(plate)
    wells = sorted({k[0] for k in tiles})
    sites = sorted({k[1] for k in tiles})
    channels = sorted({k[2] for k in tiles})
    corrected: dict[str, dict[tuple[int, int], np.ndarray]] = {w: {} for w in wells}
    for channel in channels:
        keys = [(w, s) for w in wells for s in sites]
        flat = flat_field(np.stack([tiles[(w, s, channel)] for w, s in keys]))
        for (well, site), plane in zip(keys, flat, strict=True):
            corrected[well][(site, channel)] = plane
    del tiles
    jobs = [(w, corrected[w], sites, channels) for w in wells]
    if workers <= 1:
        tables = [plain_well(*job) for job in jobs]
    else:
        pool = ProcessPoolExecutor(workers, get_context("spawn"), initializer=_one_thread)
        tables = list(pool.map(plain_well, *zip(*jobs, strict=True)))
        _LEFT.append(pool)
    return {w: len(t) for w, t in zip(wells, tables, strict=True)}


_LEFT: list[ProcessPoolExecutor] = []


def kill_left() -> None:
    """Kill the workers of the pools used (the plain loop's, the engine's), outside the
    timings: neither pays for tearing down the interpreters of the run before it."""
    from platform_core.pool import kill_workers

    kill_workers()
    while _LEFT:
        pool = _LEFT.pop()
        for process in list((pool._processes or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


class Engine:
    """The pipelines' jobs, each run on a fresh scratch instance and data root."""

    def __init__(self, pipelines: list[Pipeline], plate: Path, scratch: Path) -> None:
        from imaging_assets.pipelines import definitions_with

        self.defs = definitions_with(pipelines)
        self.plate, self.scratch, self.runs = plate, scratch, 0

    def run(self, pipeline: str, workers: int = WORKERS, profile: Path | None = None) -> dict:
        from imaging_assets.inputs import register_plate
        from imaging_assets.location import LOCATION
        from imaging_assets.partitions import plates
        from platform_core.cli import run_job, scratch_instance

        self.runs += 1
        label = f"{pipeline}_{self.runs}"
        os.environ["PLATFORM_DATA_ROOT"] = str(self.scratch / f"data_{label}")
        key = register_plate(LOCATION.store(), self.plate)
        home = self.scratch / f"home_{label}"
        home.mkdir(parents=True)
        config = {"resources": {"imaging": {"config": {"num_workers": workers}}}}
        with scratch_instance(str(home)) as instance:
            instance.add_dynamic_partitions(plates.name, [key])
            job = self.defs.resolve_job_def(pipeline)
            profiler, started = cProfile.Profile(), time.perf_counter()
            call = profiler.runcall if profile else (lambda f, *a, **k: f(*a, **k))
            result = call(run_job, job, instance, key, run_config=config)
            wall = time.perf_counter() - started
            if profile:
                profiler.dump_stats(profile)
            assert result.success, f"{pipeline} failed"
            steps = {
                s.step_key: s.end_time - s.start_time
                for s in instance.get_run_step_stats(result.run_id)
            }
            summary = self.defs.load_asset_value(
                [pipeline, "wells"], partition_key=key, instance=instance
            )
        kill_left()
        failed = summary[summary["status"] != "ran"]
        assert failed.empty, f"{pipeline}: wells not run: {failed.to_dict('records')}"
        return {
            "wall_s": wall,
            "pipeline_step_s": steps[f"{pipeline}__steps"],
            "other_steps_s": sum(v for k, v in steps.items() if k != f"{pipeline}__steps"),
            "objects": dict(zip(summary["well"], summary["objects"], strict=True)),
        }


def timed(function: Callable[[], dict[str, int]]) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    counts = function()
    seconds = time.perf_counter() - started
    kill_left()
    return seconds, counts


def compare(engine: Engine, plate: Path, repeats: int) -> pd.DataFrame:
    rows = []
    for round_ in range(repeats):
        ours = engine.run("bench_nuclei")
        parallel, counts_2 = timed(lambda: plain_loop(plate, WORKERS))
        serial, counts_1 = timed(lambda: plain_loop(plate, 1))
        engine_counts = {w: int(n) for w, n in ours["objects"].items()}
        assert engine_counts == counts_1 == counts_2, (
            "object counts differ: "
            f"{[(w, engine_counts.get(w), counts_1.get(w), counts_2.get(w)) for w in counts_1]}"
        )
        rows.append(
            {
                "round": round_ + 1,
                "engine_s": ours["wall_s"],
                "engine_pipeline_step_s": ours["pipeline_step_s"],
                "engine_manifest_validation_s": ours["other_steps_s"],
                "plain_2proc_s": parallel,
                "plain_1proc_s": serial,
                "engine/plain_2proc": ours["wall_s"] / parallel,
                "engine/plain_1proc": ours["wall_s"] / serial,
                "objects": sum(counts_1.values()),
            }
        )
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
    counts = pd.Series(counts_1)
    print(
        f"objects per well equal in engine, plain 1 and plain 2 processes (every round): "
        f"{len(counts)} wells, {counts.sum()} objects, per well min {counts.min()} median "
        f"{counts.median():.0f} max {counts.max()}; first wells {dict(counts.head(4))}"
    )
    return pd.DataFrame(rows)


def per_call_end_to_end(engine: Engine, steps: int, wells: int, repeats: int) -> dict:
    """Identity pipelines of 1 and ``steps`` steps (then ``tally``) through Dagster with 1
    worker (in this process: no pool start-up to blur the difference), interleaved."""
    engine.run(identity_pipeline(1).name, workers=1)  # warm-up: not counted
    few, many = [], []
    for _ in range(repeats):
        few.append(engine.run(identity_pipeline(1).name, workers=1))
        many.append(engine.run(identity_pipeline(steps).name, workers=1))
    extra_calls = (steps - 1) * wells
    pairs = list(zip(few, many, strict=True))
    step_diffs = [b["pipeline_step_s"] - a["pipeline_step_s"] for a, b in pairs]
    wall_diffs = [b["wall_s"] - a["wall_s"] for a, b in pairs]
    return {
        "pipeline_step_s_1": [round(r["pipeline_step_s"], 2) for r in few],
        f"pipeline_step_s_{steps}": [round(r["pipeline_step_s"], 2) for r in many],
        "wall_s_1": [round(r["wall_s"], 2) for r in few],
        f"wall_s_{steps}": [round(r["wall_s"], 2) for r in many],
        "ms_per_well_call_step": 1000 * statistics.median(step_diffs) / extra_calls,
        "ms_per_well_call_wall": 1000 * statistics.median(wall_diffs) / extra_calls,
    }


def per_call_in_memory(plate: Path, calls: int) -> dict:
    """apply_step of one identity step on one well's planes (2 calls of 9 sites stacked), vs
    the same two stacks and identity calls by hand."""
    step = compile_pipeline(identity_pipeline(1), user_code=True).steps[0]
    tiles = read_plate(plate)
    well = min(k[0] for k in tiles)
    planes = {(w, s, c, 1): v for (w, s, c), v in tiles.items() if w == well}
    context = PlateContext(
        {c: WAVE_NAMES[c - 1] for c in range(1, CHANNELS + 1)}, None, pd.DataFrame(), (0.0, 0.0)
    )
    outputs = {TILES: StepResult("image", planes)}
    started = time.perf_counter()
    for _ in range(calls):
        apply_step(step, outputs, context)
    engine = (time.perf_counter() - started) / calls
    keys = sorted(planes)
    started = time.perf_counter()
    for _ in range(calls):
        for channel in range(1, CHANNELS + 1):
            identity(np.stack([planes[k] for k in keys if k[2] == channel]))
    by_hand = (time.perf_counter() - started) / calls
    return {"apply_step_ms": 1000 * engine, "by_hand_ms": 1000 * by_hand}


def stitch(cache: Path) -> None:
    from bench.imaging_plate import GRID, run_ours
    from imaging_assets.demo import read_truth, write_demo_plate

    plate = cache / "bench_96w"
    if read_truth(plate) is None:
        write_demo_plate(cache, plate.name, "imagexpress", 96, GRID, 2, 0, workers=2)
    with tempfile.TemporaryDirectory() as scratch:
        row = run_ours(plate, 2, Path(scratch))
    tiles = 96 * 9 * 2
    print(pd.Series(row).to_string())
    print(f"stitch pipeline (imaging_plate), 2 workers: {tiles / row['wall_s']:.1f} tiles/s")


def main() -> None:
    from platform_core.cli import quiet_warnings

    quiet_warnings()
    parser = argparse.ArgumentParser()
    parser.add_argument("--wells", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--identity-steps", type=int, default=11)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "imaging_bench"))
    parser.add_argument("--profile", action="store_true", help="one engine run under cProfile")
    parser.add_argument("--stitch", action="store_true", help="only the stitch plate job")
    args = parser.parse_args()
    cache = Path(args.cache)
    if args.stitch:
        stitch(cache)
        return
    plate = ensure_plate(cache, args.wells)
    wells, tiles = args.wells, args.wells * SITES * CHANNELS
    revision = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(
        f"code {revision or '?'}; plate: {wells} wells x {SITES} sites x {CHANNELS} channels, "
        f"{TILE_PX} x {TILE_PX} uint16 ({tiles} tiles); {WORKERS} workers; "
        f"{os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as scratch:
        steps = args.identity_steps
        pipelines = [nuclei_pipeline(), identity_pipeline(1), identity_pipeline(steps)]
        engine = Engine(pipelines, plate, Path(scratch))
        memory = per_call_in_memory(plate, 2000)
        own = memory["apply_step_ms"] - memory["by_hand_ms"]
        print(
            f"engine cost per well-call in memory (apply_step, 1 well, 2 x 9 planes): "
            f"{memory['apply_step_ms']:.3f} ms; the same stacks and calls by hand "
            f"{memory['by_hand_ms']:.3f} ms; the engine's own {own:.3f} ms",
            flush=True,
        )
        end_to_end = per_call_end_to_end(engine, args.identity_steps, wells, args.repeats)
        print(
            f"identity pipelines through Dagster, 1 vs {args.identity_steps} steps: {end_to_end}",
            flush=True,
        )
        rows = compare(engine, plate, args.repeats)
        print(rows.round(3).to_string(index=False))
        print(
            f"engine / plain loop, 2 processes: median "
            f"**{rows['engine/plain_2proc'].median():.2f}** (target <= 1.2); "
            f"engine / plain loop, 1 process: median {rows['engine/plain_1proc'].median():.2f}"
        )
        print(
            f"throughput: engine {tiles / rows['engine_s'].median():.1f} tiles/s, plain 2 "
            f"processes {tiles / rows['plain_2proc_s'].median():.1f}, plain 1 process "
            f"{tiles / rows['plain_1proc_s'].median():.1f}"
        )
        if args.profile:
            out = Path(scratch) / "engine.prof"
            engine.run("bench_nuclei", profile=out)
            pstats.Stats(str(out)).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
