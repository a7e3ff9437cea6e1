"""``hcs``: microscopy plates on the platform's CLI contract (docs/cli.md).

    hcs submit PLATE_DIR [--id NAME]    register the plate folder (read-only), print its name
    hcs run [PLATE_DIR] [--plate P] [--workers N] [--wells A01,B02] [--overlap F]
            [--flat-field-blend]        register if needed, then run the plate
    hcs status [--plate P] [--json]     per plate: last run, wells ok / failed, position error
    hcs resume --plate P                re-execute the plate's last failed run from its failure
    hcs export --plate P [--step S] --out FILE.csv   tile positions (well, site, x, y; pixels)
    hcs positions --plate P --out FILE.csv           the same (its earlier name)
    hcs open --plate P                  print the plate's OME-Zarr path
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

from imaging_assets.demo import MICROSCOPES, truth_path, write_demo_plate
from imaging_assets.inputs import register_plate, stitched_store
from imaging_assets.location import LOCATION
from imaging_assets.science.layouts import LayoutError, split_well
from imaging_assets.science.synthetic import TileGrid
from platform_core import cli
from platform_core.commands import LocationCli, Request
from platform_core.datastore import DataStore
from platform_core.keys import InvalidKeyError

# run option -> the ImagingConfig field it sets
RUN_OPTIONS = {"workers": "num_workers", "overlap": "overlap", "pixel_size_um": "pixel_size_um"}


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


class HcsCli(LocationCli):
    location = LOCATION
    inputs = "PLATE_DIR"
    export_step = "tile_positions"
    status_columns = (
        "wells",
        "wells_invalid",
        "wells_stitched",
        "wells_stitch_failed",
        "median_error_px",
        "max_error_px",
    )

    def register(self, store: DataStore, path: Path, key: str | None) -> str:
        return register_plate(store, path, key)

    def add_run_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--workers", type=int, default=0, help="wells at once (default: cores)")
        parser.add_argument("--wells", help="only these wells, e.g. A01,B02")
        parser.add_argument(
            "--overlap", type=float, help="tile overlap fraction (default 0.1; Opera: Index.xml)"
        )
        parser.add_argument(
            "--pixel-size-um", type=float, help="pixel size when the metadata lacks it"
        )
        parser.add_argument(
            "--flat-field-blend",
            action="store_true",
            help="divide each channel by its flat field before blending (even mosaic intensity)",
        )

    def request(self, args: argparse.Namespace, keys: list[str]) -> Request:
        config: dict[str, Any] = {"wells": _wells(args.wells)}
        if args.flat_field_blend:
            config["flat_field_blend"] = True
        config |= {field: getattr(args, o) for o, field in RUN_OPTIONS.items() if getattr(args, o)}
        plain = super().request(args, keys)
        return Request(plain.jobs, {"resources": {"imaging": {"config": config}}}, plain.tags)

    def stored(self, asset: str, plate: str) -> pd.DataFrame | None:
        try:
            return self.session.defs.load_asset_value(
                asset, partition_key=plate, instance=self.session.instance
            )
        except dg.Failure:  # not materialized
            return None

    def figures(self, key: str, record: dg.RunRecord | None) -> dict[str, Any]:
        """What a user asks about a plate, from the stored tables."""
        row: dict[str, Any] = {}
        manifest = self.stored("plate_manifest", key)
        validation = self.stored("plate_validation", key)
        positions = self.stored("tile_positions", key)
        stitched = self.stored("stitched_plate", key)
        if manifest is not None:
            row |= {
                "microscope": manifest["microscope"].iloc[0],
                "wells": int(manifest["well"].nunique()),
            }
        if validation is not None:
            row["wells_invalid"] = int((validation["status"] != "ok").sum())
        if positions is not None:
            failed = positions.loc[positions["error"] != "", "well"]
            row["wells_registration_failed"] = int(failed.nunique())
            if "error_px" in positions:
                row["median_error_px"] = round(float(positions["error_px"].median()), 3)
                row["max_error_px"] = round(float(positions["error_px"].max()), 3)
        if stitched is not None:
            row["wells_stitched"] = int(stitched["status"].isin(["written", "reused"]).sum())
            row["wells_stitch_failed"] = int((stitched["status"] == "failed").sum())
            row["ome_zarr"] = str(stitched_store(self.session.store, key))
        return row

    def export_table(self, key: str, step: str) -> pd.DataFrame:
        table = super().export_table(key, step)
        if step != self.export_step:
            return table
        return table[table["error"] == ""][["well", "site", "x", "y"]].round(3)

    def add_demo_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default="demo_plate")
        parser.add_argument("--microscope", choices=MICROSCOPES, default="imagexpress")
        parser.add_argument("--wells", type=int, default=4)
        parser.add_argument("--sites", type=int, default=3, help="sites per side (a 3 x 3 grid)")
        parser.add_argument("--tile", type=int, default=512, help="tile side, pixels")
        parser.add_argument("--channels", type=int, default=2)
        parser.add_argument("--overlap", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=0)

    def demo(self, args: argparse.Namespace) -> int:
        grid = TileGrid(rows=args.sites, cols=args.sites, tile=args.tile, overlap=args.overlap)
        try:
            folder = write_demo_plate(
                Path(args.out),
                args.name,
                args.microscope,
                args.wells,
                grid,
                args.channels,
                args.seed,
            )
        except (ValueError, InvalidKeyError) as error:
            raise cli.CliError(str(error)) from None
        print(f"{args.microscope} demo plate -> {folder} (true positions: {truth_path(folder)})")
        return 0

    def add_verbs(self, commands: Any) -> None:
        text = "tile positions of a plate as CSV (export)"
        positions = self.add_verb(commands, "positions", text, self.cmd_export, out=True)
        positions.set_defaults(step=None)
        self.add_verb(commands, "open", "print the path of a plate's OME-Zarr", self.cmd_open)

    def cmd_open(self, args: argparse.Namespace) -> int:
        plate = self.require(args.id)
        store = stitched_store(self.session.store, plate)
        if not (store / "zarr.json").exists():
            raise cli.CliError(f"plate {plate} has not been stitched yet; run 'hcs run PLATE_DIR'")
        print(store)
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.dispatch(HcsCli().parser("hcs", __doc__.split("\n\n")[0]).parse_args(argv))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
