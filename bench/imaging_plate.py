"""Imaging benchmark: a 96-well plate (3 x 3 sites, 2 channels, 1024 x 1024 uint16 tiles)
through the plate job with 1 and 2 workers, with 2 workers once more with the overlap
estimate and the flat field off (the stated overlap, as before they existed), and m2stitch
(MIST algorithm) on the same wells.

    .venv/bin/python bench/imaging_plate.py [--wells 96] [--m2stitch-wells 8] [--cache DIR]
                                            [--quick]

First the orchestration cost: the plate job with 2 workers against the same science in a
plain loop without Dagster (bench/imaging_science.py), platform / science (``--quick`` stops
there).

Prints wall time, tiles/s of the registration and stitching steps, peak memory per worker,
position errors against the truth, and m2stitch's time and errors (raw tiles, and tiles
flat-field corrected and background subtracted, as MIST users prepare them). The plate is
generated once into --cache (deterministic) and reused.
"""

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage

from bench.imaging_science import bare_plate
from imaging_assets.definitions import defs
from imaging_assets.demo import read_truth, write_demo_plate
from imaging_assets.inputs import register_plate
from imaging_assets.location import LOCATION
from imaging_assets.partitions import plates
from imaging_assets.science.registration import position_errors
from imaging_assets.science.synthetic import TileGrid
from platform_core.cli import quiet_warnings, run_job, scratch_instance

GRID = TileGrid(rows=3, cols=3, tile=1024, overlap=0.1)


def step_metadata(instance, asset: str, plate: str) -> dict:
    import dagster as dg

    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[plate]), limit=1
    ).records[0]
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def run_ours(plate_dir: Path, workers: int, scratch: Path, estimate: bool = True) -> dict:
    label = f"{workers}{'' if estimate else '_stated'}"
    os.environ["PLATFORM_DATA_ROOT"] = str(scratch / f"data_{label}")
    plate = register_plate(LOCATION.store(), plate_dir)
    home = scratch / f"home_{label}"
    home.mkdir(parents=True)
    with scratch_instance(str(home)) as instance:
        instance.add_dynamic_partitions(plates.name, [plate])
        job = defs.resolve_job_def("imaging_plate")
        started = time.perf_counter()
        result = run_job(
            job,
            instance,
            plate,
            run_config={
                "resources": {
                    "imaging": {
                        "config": {
                            "num_workers": workers,
                            "estimate_overlap": estimate,
                            "flat_field": estimate,
                        }
                    }
                }
            },
        )
        wall = time.perf_counter() - started
        assert result.success, "plate run failed"
        steps = {
            s.step_key: s.end_time - s.start_time
            for s in instance.get_run_step_stats(result.run_id)
        }
        positions = step_metadata(instance, "tile_positions", plate)
        stitched = step_metadata(instance, "stitched_plate", plate)
    return {
        "workers": workers,
        "overlap": f"estimated {positions['estimated_overlap_x']:.3f}" if estimate else "stated",
        "wall_s": wall,
        "positions_s": steps["tile_positions"],
        "stitch_s": steps["stitched_plate"],
        "qc_s": steps["plate_qc"],
        "registration_tiles_per_s": positions["tiles_per_second"],
        "stitch_tiles_per_s": stitched["tiles_per_second"],
        "peak_worker_mb": max(
            positions["peak_worker_memory_mb"], stitched["peak_worker_memory_mb"]
        ),
        "median_error_px": positions["median_error_px"],
        "max_error_px": positions["max_error_px"],
    }


def flat_field(images: np.ndarray) -> np.ndarray:
    """Tiles divided by their smoothed mean (the illumination) minus the median background."""
    flat = ndimage.gaussian_filter(images.mean(axis=0), 32)
    corrected = images / (flat / flat.mean())
    return corrected - np.median(corrected)


def run_m2stitch(plate_dir: Path, wells: list[str]) -> list[dict]:
    import m2stitch

    truth = read_truth(plate_dir)
    rows = []
    for preparation in ("raw", "flat-field"):
        seconds, errors, failed = 0.0, [], 0
        for well in wells:
            sites = truth[truth["well"] == well].sort_values("site")
            images = np.stack(
                [
                    tifffile.imread(plate_dir / "TimePoint_1" / f"{well}_s{s}_w1.tif")
                    for s in sites["site"]
                ]
            ).astype(np.float32)
            data = images if preparation == "raw" else flat_field(images)
            grid_rows = [(s - 1) // GRID.cols for s in sites["site"]]
            grid_cols = [(s - 1) % GRID.cols for s in sites["site"]]
            started = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    found, _ = m2stitch.stitch_images(
                        data,
                        rows=grid_rows,
                        cols=grid_cols,
                        row_col_transpose=False,
                        ncc_threshold=0.3,
                    )
            except AssertionError:
                failed += 1
                seconds += time.perf_counter() - started
                continue
            seconds += time.perf_counter() - started
            table = sites[["well", "site"]].assign(
                x=found["x_pos"].to_numpy(float), y=found["y_pos"].to_numpy(float)
            )
            errors.append(position_errors(table, truth)["error_px"])
        error = pd.concat(errors) if errors else pd.Series([np.nan])
        rows.append(
            {
                "preparation": preparation,
                "wells": len(wells),
                "failed_wells": failed,
                "seconds": seconds,
                "tiles_per_s": len(wells) * GRID.rows * GRID.cols / seconds,
                "median_error_px": float(error.median()),
                "max_error_px": float(error.max()),
            }
        )
    return rows


def main() -> None:
    quiet_warnings()
    parser = argparse.ArgumentParser()
    parser.add_argument("--wells", type=int, default=96)
    parser.add_argument("--m2stitch-wells", type=int, default=8)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "imaging_bench"))
    parser.add_argument("--quick", action="store_true", help="stop after the orchestration cost")
    args = parser.parse_args()
    plate_dir = Path(args.cache) / f"bench_{args.wells}w"
    if read_truth(plate_dir) is None:
        started = time.perf_counter()
        write_demo_plate(
            Path(args.cache), plate_dir.name, "imagexpress", args.wells, GRID, 2, 0, workers=2
        )
        print(
            f"generated {args.wells} wells x 9 sites x 2 channels in "
            f"{time.perf_counter() - started:.0f}s"
        )
    tiles = args.wells * 9 * 2
    with tempfile.TemporaryDirectory() as scratch:
        platform = run_ours(plate_dir, 2, Path(scratch) / "orchestration")
        started = time.perf_counter()
        bare_plate(plate_dir, Path(scratch) / "bare.ome.zarr", 2)
        bare = time.perf_counter() - started
        print(
            f"plate job, 2 workers: {platform['wall_s']:.1f} s; the same science without "
            f"Dagster: {bare:.1f} s; platform / science = {platform['wall_s'] / bare:.2f}"
        )
        if args.quick:
            return
        ours = [run_ours(plate_dir, workers, Path(scratch)) for workers in (1, 2)]
        ours.append(run_ours(plate_dir, 2, Path(scratch), estimate=False))
    print(f"plate: {args.wells} wells, 3 x 3 sites, 2 channels, 1024 x 1024 uint16 ({tiles} tiles)")
    print(pd.DataFrame(ours).round(2).to_string(index=False))
    for row in ours:
        print(
            f"workers={row['workers']}, overlap {row['overlap']}: "
            f"{tiles / row['wall_s']:.1f} tiles/s over the whole run"
        )
    print(
        "registration throughput, 2 workers, estimated / stated overlap: "
        f"{ours[1]['registration_tiles_per_s'] / ours[2]['registration_tiles_per_s']:.2f}"
    )
    wells = sorted(read_truth(plate_dir)["well"].unique())[: args.m2stitch_wells]
    if not wells:
        return
    m2 = run_m2stitch(plate_dir, wells)
    print("m2stitch (registration channel only, tiles already in memory):")
    print(pd.DataFrame(m2).round(3).to_string(index=False))
    best = max(r["tiles_per_s"] for r in m2)
    for row in ours:
        print(
            f"registration throughput, ours with {row['workers']} worker(s) / m2stitch: "
            f"{row['registration_tiles_per_s'] / best:.1f}x"
        )


if __name__ == "__main__":
    main()
