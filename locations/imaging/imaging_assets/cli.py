"""``hcs``: microscopy plates on the platform's CLI contract (docs/cli.md).

    hcs submit PLATE_DIR [--id NAME]    register the plate folder (read-only), print its name
    hcs run [PLATE_DIR] [--plate P] [--workers N] [--wells A01,B02] [--overlap F]
            [--flat-field-blend]        register if needed, then run the plate (stitch)
            [--pipeline NAME]           ... through a loaded pipeline instead
            [--pipeline-file F.yaml]    ... through your own pipeline file (in this process)
    hcs pipelines [--json]              the loaded pipelines, and the files refused and why
    hcs status [--plate P] [--json]     per plate: last run, wells ok / failed, position error
    hcs resume --plate P                re-execute the plate's last failed run from its failure
    hcs export --plate P [--step S] --out FILE.csv   tile positions (well, site, x, y; pixels)
    hcs export --plate P --pipeline NAME [--step S] --out FILE   a pipeline step's table
                                        (default: its per-well summary)
    hcs positions --plate P --out FILE.csv           the same (its earlier name)
    hcs open --plate P                  print the plate's OME-Zarr path
    hcs demo --out DIR [--microscope imagexpress|opera|generic] [--wells N] [--z-planes N]
             [--content texture|nuclei]  write a synthetic plate with its true positions

The plate's partition key is its folder name (letters, digits, '.', '_', '-'). Exit codes:
0 ok, 1 a run failed, 2 bad arguments or input. Runs are recorded in the instance at
``$DAGSTER_HOME``, so they show in the web UI.
"""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from imaging_assets.components.pipeline import pipelines_of, refused_pipelines
from imaging_assets.demo import MICROSCOPES, truth_path, write_demo_plate
from imaging_assets.inputs import PLATES, register_plate, stitched_store
from imaging_assets.location import LOCATION, PLATE_JOB
from imaging_assets.partitions import GROUP
from imaging_assets.pipelines import PipelineError, definitions_with, read_pipeline_file
from imaging_assets.science.layouts import LayoutError, split_well
from imaging_assets.science.synthetic import TileGrid
from imaging_assets.science.synthetic_nuclei import write_nuclei_plate
from platform_core import cli
from platform_core.commands import LocationCli, Request
from platform_core.datastore import DataStore
from platform_core.keys import InvalidKeyError
from platform_core.location import group_assets

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

    def refused(self) -> tuple[type[Exception], ...]:
        return (*super().refused(), *PLATES.inbox("", "keep", "").refused, PipelineError)

    def cmd_run(self, args: argparse.Namespace) -> int:
        if args.pipeline and args.pipeline_file:
            raise cli.CliError("--pipeline and --pipeline-file: one pipeline per run")
        if args.pipeline_file:  # the user's own file: compiled and run here, no reload
            try:
                pipeline = read_pipeline_file(Path(args.pipeline_file))
                self.session.defs = definitions_with([pipeline])
            except PipelineError as error:
                raise cli.CliError(str(error)) from None
            args.pipeline, args.here = pipeline.name, True
        return super().cmd_run(args)

    def job_name(self, args: argparse.Namespace) -> str:
        """The job a run or export is about: a pipeline's, or the stitch pipeline's."""
        name = getattr(args, "pipeline", None)
        if not name or name == "stitch":
            return PLATE_JOB
        if name not in pipelines_of(self.session.defs):
            loaded = ", ".join(["stitch", *sorted(pipelines_of(self.session.defs))])
            raise cli.CliError(f"--pipeline {name}: not a loaded pipeline (loaded: {loaded})")
        return name

    def add_run_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--pipeline", help="a loaded pipeline (default: stitch)")
        parser.add_argument(
            "--pipeline-file", help="your own pipeline YAML, run in this process (no reload)"
        )
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
        job = self.session.defs.resolve_job_def(self.job_name(args))
        assets = sorted(job.asset_layer.executable_asset_keys)
        run_config = {"resources": {"imaging": {"config": config}}}
        return Request({job.name: {asset: keys for asset in assets}}, run_config, self.tags(args))

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

    def add_partition_options(self, parser: argparse.ArgumentParser, verb: str) -> None:
        if verb == "export":
            parser.add_argument("--pipeline", help="the pipeline whose step --step names")

    def cmd_export(self, args: argparse.Namespace) -> int:
        if getattr(args, "pipeline", None) not in (None, "stitch"):  # loaded or run from a file
            args.step = f"{args.pipeline}/{args.step or 'wells'}"
        return super().cmd_export(args)

    def export_table(self, key: str, step: str) -> pd.DataFrame:
        asset = dg.AssetKey.from_user_string(step)
        if asset not in self.session.asset_keys and len(asset.path) == 2:
            # a step of a pipeline run from its file (--pipeline-file): read as stored
            with dg.build_resources({"io": self.session.defs.resources["io_manager"]}) as built:
                stored = built.io.read_partition(asset, key)
            if stored is None:
                raise cli.CliError(f"--pipeline {asset.path[0]}: no step {asset.path[1]} stored")
            return stored
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
        parser.add_argument("--z-planes", type=int, default=1, help="z planes per site")
        parser.add_argument(
            "--content",
            choices=("texture", "nuclei"),
            default="texture",
            help="texture (stitching) or nuclei (segmentation; ImageXpress only)",
        )

    def demo(self, args: argparse.Namespace) -> int:
        grid = TileGrid(rows=args.sites, cols=args.sites, tile=args.tile, overlap=args.overlap)
        try:
            if args.content == "nuclei":
                if args.microscope != "imagexpress":
                    raise ValueError("--content nuclei writes ImageXpress plates only")
                folder = write_nuclei_plate(
                    Path(args.out),
                    args.name,
                    args.wells,
                    args.sites,
                    args.tile,
                    args.overlap,
                    args.channels,
                    args.seed,
                    args.z_planes,
                )
            else:
                folder = write_demo_plate(
                    Path(args.out),
                    args.name,
                    args.microscope,
                    args.wells,
                    grid,
                    args.channels,
                    args.seed,
                    z_planes=args.z_planes,
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
        listing = commands.add_parser("pipelines", help="the loaded pipelines, and refused files")
        listing.add_argument("--json", action="store_true")
        listing.set_defaults(func=self.cmd_pipelines)

    def cmd_pipelines(self, args: argparse.Namespace) -> int:
        """Every loaded pipeline (name, file, steps) and every refused file with its reason."""
        stitch = group_assets(self.session.defs, [GROUP])
        loaded = {
            "stitch": {
                "source": f"the {PLATE_JOB} job",
                "steps": [k.to_user_string() for k in stitch],
            }
        } | pipelines_of(self.session.defs)
        refused = refused_pipelines(self.session.defs)
        if args.json:
            print(json.dumps({"pipelines": loaded, "refused": refused}, indent=2))
            return 0
        for name, record in loaded.items():
            print(f"{name}: {' -> '.join(record['steps'])}  ({record['source']})")
        for file, why in refused.items():
            print(f"refused {file}: {why}")
        return 0

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
