"""``hcs``: microscopy plates as a thin wrapper over Dagster.

    hcs run PLATE_DIR [--plate NAME] [--workers N] [--wells A01,B02] [--overlap F]
            [--flat-field-blend]
                                      register the plate folder (read-only) and run it
    hcs resume --plate P              re-execute the plate's last failed run from its failed step
    hcs status [--plate P] [--json]   per plate: last run, wells ok / failed, position error
    hcs positions --plate P --out FILE.csv   tile positions (well, site, x, y; pixels)
    hcs open --plate P                print the plate's OME-Zarr path
    hcs demo --out DIR [--microscope imagexpress|opera|generic] [--wells N] ...
                                      write a synthetic plate with its true positions

The plate's partition key is its folder name (letters, digits, '.', '_', '-'). Exit codes:
0 ok, 1 a run failed, 2 bad arguments or input. Runs are recorded in the instance at
``$DAGSTER_HOME``, so they show in the web UI.
"""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from imaging_assets.defs.jobs import plate_job
from imaging_assets.demo import MICROSCOPES, truth_path, write_demo_plate
from imaging_assets.partitions import plates
from imaging_assets.plates import PlateExistsError, register_plate, stitched_store
from imaging_assets.resources import STORAGE
from imaging_assets.science.layouts import LayoutError, split_well
from imaging_assets.science.synthetic import TileGrid
from platform_core import cli
from platform_core.io import atomic_write
from platform_core.keys import InvalidKeyError


def _stored(asset: str, plate: str) -> pd.DataFrame | None:
    return STORAGE.read_partition(dg.AssetKey(asset), plate)


def _require_plate(inst: dg.DagsterInstance, plate: str) -> str:
    hint = "run it first with 'hcs run PLATE_DIR'"
    return cli.require_partition(inst, plates, plate, "--plate", hint)


def _wells(text: str | None) -> list[str]:
    """'a1, B02' -> ['A01', 'B02']."""
    wells = []
    for name in filter(None, (w.strip().upper() for w in (text or "").split(","))):
        try:
            row, column = split_well(name)
        except LayoutError:
            raise cli.CliError(f"--wells: {name!r} is not a well name (e.g. A01)") from None
        wells.append(f"{row}{column:02d}")
    return wells


def cmd_run(args: argparse.Namespace) -> int:
    folder = Path(args.plate_dir)
    try:
        plate = register_plate(folder, args.plate)
    except (InvalidKeyError, PlateExistsError, FileNotFoundError) as error:
        raise cli.CliError(str(error)) from None
    inst = cli.instance()
    inst.add_dynamic_partitions(plates.name, [plate])
    config: dict[str, Any] = {"wells": _wells(args.wells)}
    if args.flat_field_blend:
        config["flat_field_blend"] = True
    for option, key in (
        ("workers", "num_workers"),
        ("overlap", "overlap"),
        ("pixel_size_um", "pixel_size_um"),
    ):
        if getattr(args, option):
            config[key] = getattr(args, option)
    from imaging_assets.definitions import defs

    result = cli.run_job(
        defs.resolve_job_def(plate_job.name),
        inst,
        partition_key=plate,
        run_config={"resources": {"imaging": {"config": config}}},
        tags={"hcs/cli": "run"},
        progress=cli.Progress(args.quiet),
    )
    code = cli.report(result, f"plate {plate}")
    _print_status(inst, [plate], as_json=False)
    return code


def _last_run(inst: dg.DagsterInstance, plate: str) -> dg.RunRecord | None:
    return cli.last_partition_run(inst, plate, [plate_job.name])


def cmd_resume(args: argparse.Namespace) -> int:
    inst = cli.instance()
    plate = _require_plate(inst, args.plate)
    code = cli.resume(inst, "imaging_assets.definitions", _last_run(inst, plate), f"plate {plate}")
    _print_status(inst, [plate], as_json=False)
    return code


def plate_status(inst: dg.DagsterInstance, plate: str) -> dict[str, Any]:
    """What a user asks about a plate, from the instance and the stored tables."""
    row: dict[str, Any] = {"plate": plate, **cli.run_summary(_last_run(inst, plate))}
    validation = _stored("plate_validation", plate)
    positions = _stored("tile_positions", plate)
    stitched = _stored("stitched_plate", plate)
    manifest = _stored("plate_manifest", plate)
    if manifest is not None:
        row |= {
            "microscope": manifest["microscope"].iloc[0],
            "wells": int(manifest["well"].nunique()),
        }
    if validation is not None:
        row["wells_invalid"] = int((validation["status"] != "ok").sum())
    if positions is not None:
        row["wells_registration_failed"] = int(
            positions.loc[positions["error"] != "", "well"].nunique()
        )
        if "error_px" in positions:
            row["median_error_px"] = round(float(positions["error_px"].median()), 3)
            row["max_error_px"] = round(float(positions["error_px"].max()), 3)
    if stitched is not None:
        row["wells_stitched"] = int(stitched["status"].isin(["written", "reused"]).sum())
        row["wells_stitch_failed"] = int((stitched["status"] == "failed").sum())
        row["ome_zarr"] = str(stitched_store(plate))
    return row


def _print_status(inst: dg.DagsterInstance, names: Sequence[str], as_json: bool) -> None:
    rows = [plate_status(inst, plate) for plate in names]
    columns = [
        "plate",
        "status",
        "wells",
        "wells_invalid",
        "wells_stitched",
        "wells_stitch_failed",
        "median_error_px",
        "max_error_px",
        "last_run",
    ]
    cli.print_rows(rows, columns, as_json)


def cmd_status(args: argparse.Namespace) -> int:
    inst = cli.instance()
    names = (
        [_require_plate(inst, args.plate)]
        if args.plate
        else inst.get_dynamic_partitions(plates.name)
    )
    _print_status(inst, sorted(names), args.json)
    return 0


def cmd_positions(args: argparse.Namespace) -> int:
    plate = _require_plate(cli.instance(), args.plate)
    table = _stored("tile_positions", plate)
    if table is None:
        raise cli.CliError(f"plate {plate} has no tile positions yet; run 'hcs run PLATE_DIR'")
    found = table[table["error"] == ""][["well", "site", "x", "y"]]
    out = Path(args.out)
    atomic_write(out, lambda tmp: found.to_csv(tmp, index=False, float_format="%.3f"))
    print(f"{len(found)} tile positions of {found['well'].nunique()} wells -> {out}")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    plate = _require_plate(cli.instance(), args.plate)
    store = stitched_store(plate)
    if not (store / "zarr.json").exists():
        raise cli.CliError(f"plate {plate} has not been stitched yet; run 'hcs run PLATE_DIR'")
    print(store)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    grid = TileGrid(rows=args.sites, cols=args.sites, tile=args.tile, overlap=args.overlap)
    try:
        folder = write_demo_plate(
            Path(args.out), args.name, args.microscope, args.wells, grid, args.channels, args.seed
        )
    except (ValueError, InvalidKeyError) as error:
        raise cli.CliError(str(error)) from None
    print(f"{args.microscope} demo plate -> {folder} (true positions: {truth_path(folder)})")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="hcs", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    p = commands.add_parser("run", help="register a plate folder and run it")
    p.add_argument("plate_dir")
    p.add_argument("--plate", help="partition key (default: the folder's name)")
    p.add_argument("--workers", type=int, default=0, help="wells at once (default: cores)")
    p.add_argument("--wells", help="only these wells, e.g. A01,B02")
    p.add_argument(
        "--overlap", type=float, help="tile overlap fraction (default 0.1; Opera: Index.xml)"
    )
    p.add_argument("--pixel-size-um", type=float, help="pixel size when the metadata lacks it")
    p.add_argument(
        "--flat-field-blend",
        action="store_true",
        help="divide each channel by its flat field before blending (even mosaic intensity)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_run)
    p = commands.add_parser("resume", help="re-execute the last failed run from its failed step")
    p.add_argument("--plate", required=True)
    p.set_defaults(func=cmd_resume)
    p = commands.add_parser("status", help="per plate: last run, wells, position error")
    p.add_argument("--plate")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = commands.add_parser("positions", help="tile positions of a plate as CSV")
    p.add_argument("--plate", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_positions)
    p = commands.add_parser("open", help="print the path of a plate's OME-Zarr")
    p.add_argument("--plate", required=True)
    p.set_defaults(func=cmd_open)
    p = commands.add_parser("demo", help="write a synthetic plate with its true positions")
    p.add_argument("--out", required=True, help="folder to write the plate folder into")
    p.add_argument("--name", default="demo_plate")
    p.add_argument("--microscope", choices=MICROSCOPES, default="imagexpress")
    p.add_argument("--wells", type=int, default=4)
    p.add_argument("--sites", type=int, default=3, help="sites per side (a 3 x 3 grid)")
    p.add_argument("--tile", type=int, default=512, help="tile side, pixels")
    p.add_argument("--channels", type=int, default=2)
    p.add_argument("--overlap", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    return cli.dispatch(parser().parse_args(argv))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
