"""Quality gates on a plate. None blocks: a bad well is recorded and the others go on, but
every check fails visibly (ERROR) when a well was left out or failed, or (WARN) when a well's
images look out of focus or saturated."""

import dagster as dg
import pandas as pd
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from imaging_assets.inputs import stitched_store
from imaging_assets.partitions import plates
from imaging_assets.science.layouts import split_well
from platform_core.datastore import DataStore

MEDIAN_ERROR_PX = 0.5
MAX_ERROR_PX = 1.5
FOCUS_FRACTION = 0.5  # a well is out of focus below this fraction of the plate's median
SATURATED_FRACTION = 0.01


@dg.asset_check(
    asset="plate_validation",
    partitions_def=plates,
    description="Every well has its full site grid for every channel, readable tiles of one "
    "shape, and fits the worker memory.",
)
def every_well_complete(plate_validation: pd.DataFrame) -> dg.AssetCheckResult:
    invalid = plate_validation[plate_validation["status"] != "ok"]
    return dg.AssetCheckResult(
        passed=invalid.empty,
        metadata={
            "invalid_wells": ", ".join(invalid["well"]),
            "first_problem": str(invalid["error"].iloc[0]) if len(invalid) else "",
        },
    )


@dg.asset_check(
    asset="tile_positions",
    partitions_def=plates,
    description="Every well registered, every neighbour pair trusted (NCC >= min_quality); "
    f"against true positions (when known) median error <= {MEDIAN_ERROR_PX} px and max <= "
    f"{MAX_ERROR_PX} px.",
)
def positions_are_trustworthy(tile_positions: pd.DataFrame) -> dg.AssetCheckResult:
    wells = tile_positions.drop_duplicates("well")
    failed = wells[wells["error"] != ""]
    untrusted = wells[wells["untrusted_pairs"] > 0]
    metadata = {
        "failed_wells": ", ".join(failed["well"]),
        "wells_with_untrusted_pairs": ", ".join(untrusted["well"]),
    }
    passed = failed.empty and untrusted.empty
    if "error_px" in tile_positions and tile_positions["error_px"].notna().any():
        median, largest = tile_positions["error_px"].median(), tile_positions["error_px"].max()
        metadata |= {"median_error_px": float(median), "max_error_px": float(largest)}
        passed = passed and median <= MEDIAN_ERROR_PX and largest <= MAX_ERROR_PX
    return dg.AssetCheckResult(passed=bool(passed), metadata=metadata)


@dg.asset_check(
    asset="stitched_plate",
    partitions_def=plates,
    description="No well failed, and the OME-Zarr plate opens with ome-zarr's reader, listing "
    "exactly the wells that have an image, each of the recorded size.",
)
def plate_opens_in_ome_zarr(
    context: dg.AssetCheckExecutionContext, stitched_plate: pd.DataFrame, storage: DataStore
) -> dg.AssetCheckResult:
    store = stitched_store(storage, context.partition_key)
    location = parse_url(str(store))
    nodes = list(Reader(location)()) if location else []
    attrs = nodes[0].zarr.root_attrs if nodes else {}
    plate = attrs.get("plate") or attrs.get("ome", {}).get("plate", {})
    listed = {w["path"].replace("/", "") for w in plate.get("wells", [])}
    imaged = stitched_plate[stitched_plate["status"] != "failed"]
    expected = {"{}{}".format(*split_well(w)) for w in imaged["well"]}
    failed = stitched_plate[stitched_plate["status"] == "failed"]
    return dg.AssetCheckResult(
        passed=bool(nodes) and listed == expected and failed.empty,
        metadata={
            "wells_listed": len(listed),
            "wells_expected": len(expected),
            "failed_wells": ", ".join(failed["well"]),
        },
    )


@dg.asset_check(
    asset="plate_qc",
    partitions_def=plates,
    description=f"No well's focus score below {FOCUS_FRACTION} x the plate median (per "
    f"channel) and no more than {SATURATED_FRACTION:.0%} saturated pixels.",
)
def wells_in_focus_and_unsaturated(plate_qc: pd.DataFrame) -> dg.AssetCheckResult:
    measured = plate_qc[plate_qc["error"] == ""]
    median = measured.groupby("channel")["focus"].transform("median")
    blurred = measured[measured["focus"] < FOCUS_FRACTION * median]
    saturated = measured[measured["saturated_fraction"] > SATURATED_FRACTION]
    errors = plate_qc[plate_qc["error"] != ""]
    return dg.AssetCheckResult(
        passed=blurred.empty and saturated.empty and errors.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "out_of_focus": ", ".join(sorted(set(blurred["well"]))),
            "saturated": ", ".join(sorted(set(saturated["well"]))),
            "not_measured": ", ".join(errors["well"]),
        },
    )


CHECKS = [
    every_well_complete,
    positions_are_trustworthy,
    plate_opens_in_ome_zarr,
    wells_in_focus_and_unsaturated,
]
