"""Quality of the stitched plate: focus and intensity per well and channel, a montage."""

import dagster as dg
import numpy as np
import pandas as pd

from imaging_assets.inputs import stitched_store
from imaging_assets.partitions import PLATE_ASSET
from imaging_assets.resources import ImagingConfig
from imaging_assets.science.layouts import split_well
from imaging_assets.science.qc import plate_montage_png
from imaging_assets.wells import qc_well, run_wells
from platform_core.datastore import DataStore
from platform_core.figures import markdown_image

THUMBNAIL_SIZE = 256


@dg.asset(
    **PLATE_ASSET,
    code_version="1",
    kinds={"pandas"},
    description="Per well and channel of the stitched plate: focus score (variance of the "
    "Laplacian / mean^2), mean, std, 1st/99th percentile, saturated fraction; a thumbnail "
    "montage of the plate in the metadata.",
)
def plate_qc(
    context: dg.AssetExecutionContext,
    stitched_plate: pd.DataFrame,
    imaging: ImagingConfig,
    storage: DataStore,
) -> pd.DataFrame:
    store = stitched_store(storage, context.partition_key)
    done = stitched_plate[stitched_plate["status"].isin(["written", "reused", "outdated"])]
    jobs = []
    for well, height, width in zip(done["well"], done["height"], done["width"], strict=True):
        level = max(0, int(np.ceil(np.log2(max(height, width) / THUMBNAIL_SIZE))))
        jobs.append((well, (store, *split_well(well), level)))
    results = run_wells(qc_well, jobs, imaging.workers())
    rows, thumbnails = [], {}
    for result in results:
        if result["error"]:
            rows.append({"well": result["well"], "channel": 0, "error": result["error"]})
            continue
        thumbnails[result["well"]] = result["thumbnail"]
        rows += [{"well": result["well"], **c, "error": ""} for c in result["channels"]]
    table = pd.DataFrame(
        rows,
        columns=[
            "well",
            "channel",
            "focus",
            "mean",
            "std",
            "p1",
            "p99",
            "saturated_fraction",
            "error",
        ],
    )
    image = markdown_image(plate_montage_png(thumbnails), "plate montage")
    context.add_output_metadata(
        {
            "wells": len(results),
            "montage": dg.MetadataValue.md(image),
            "median_focus": round(float(table["focus"].median()), 4) if len(table) else 0.0,
            "max_saturated_fraction": float(table["saturated_fraction"].max())
            if len(table)
            else 0.0,
        }
    )
    return table
