"""The shipped nuclei_count pipeline on plates whose site overlaps hold nuclei: each nucleus
counted once (the mosaic is segmented), against the per-site sum that counts the overlaps
twice; labels under their image in the OME-Zarr; and a real z-stack (stardist's img3d)
through read, project_z and segment."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import tifffile
import zarr

from imaging_assets.cli import main
from imaging_assets.pipelines import FunctionStep, Pipeline, run
from imaging_assets.science import omezarr
from imaging_assets.science.segmentation import segment_nuclei
from imaging_assets.science.synthetic_nuclei import write_nuclei_plate
from imaging_assets.science.zstack import project_z
from tests.imaging.nuclei_truth import stardist_image
from tests.support import latest_metadata
from tests.support import store as data_store

TILE, OVERLAP = 256, 0.15


def duplicates_in_overlaps(plate: Path) -> pd.Series:
    """Per well, how many extra times the tiles show the true nuclei: a nucleus whose centre
    lies in k tiles is seen k - 1 times too often by a per-site count."""
    nuclei = pd.read_csv(plate.with_name(plate.name + ".nuclei.csv"))
    tiles = pd.read_csv(plate.with_name(plate.name + ".truth.csv"))
    extra = {}
    for well, found in nuclei.groupby("well"):
        placed = tiles[tiles["well"] == well]
        inside = sum(
            (
                (found["y"] >= y)
                & (found["y"] < y + TILE)
                & (found["x"] >= x)
                & (found["x"] < x + TILE)
            ).to_numpy()
            for x, y in zip(placed["x"], placed["y"], strict=True)
        )
        extra[well] = int((inside - 1).clip(min=0).sum())
    return pd.Series(extra)


def test_each_nucleus_is_counted_once(hcs_home: Path, hcs_instance, tmp_path: Path) -> None:
    plate = write_nuclei_plate(hcs_home / "plates", "overlap_nuclei", 2, 3, TILE, OVERLAP, 2, 7)
    truth = pd.read_csv(plate.with_name(plate.name + ".nuclei.csv")).groupby("well").size()
    assert main(["run", str(plate), "--pipeline", "nuclei_count", "--workers", "2"]) == 0
    out = tmp_path / "wells.csv"
    assert (
        main(
            ["export", "--plate", "overlap_nuclei", "--pipeline", "nuclei_count", "--out", str(out)]
        )
        == 0
    )
    mosaic = pd.read_csv(out).set_index("well")["objects"]
    assert ((mosaic - truth).abs() <= 0.08 * truth).all(), (mosaic.to_dict(), truth.to_dict())

    per_site = Pipeline(
        [
            FunctionStep("illumination", "flat_field", scope="plate"),
            FunctionStep("nuclei", "segment_nuclei", {"channel": 1}),
            FunctionStep("cells", "measure_objects", {"labels": "nuclei"}, reads=["nuclei"]),
        ],
        name="per_site_count",
    )
    sites = run([per_site], plate, workers=2)["per_site_count"].set_index("well")["objects"]
    extra = duplicates_in_overlaps(plate)
    assert (extra > 0.1 * truth).all()  # the overlaps do hold nuclei
    # summing sites counts the overlap nuclei again; the mosaic does not
    np.testing.assert_allclose(sites - mosaic, extra, rtol=0.35)

    # cells of the mosaic: site empty, centroids inside the mosaic; labels under field 0
    cells_out = tmp_path / "cells.parquet"
    args = ["export", "--plate", "overlap_nuclei", "--pipeline", "nuclei_count", "--step", "cells"]
    assert main([*args, "--out", str(cells_out)]) == 0
    cells = pd.read_parquet(cells_out)
    assert cells["site"].isna().all() and cells.groupby("well").size().equals(mosaic.sort_index())
    for column in (
        "area_px",
        "eccentricity",
        "solidity",
        "mean_intensity_DAPI",
        "integrated_intensity_FITC",
    ):
        assert cells[column].notna().all(), column
    store = data_store("imaging").value_path(
        dg.AssetKey(["nuclei_count", "nuclei"]), "overlap_nuclei", "ome.zarr"
    )
    image = omezarr.read_well(store, "A", 1)
    labels = omezarr.read_well(store, "A", 1, labels="nuclei")
    assert labels.shape[-2:] == image.shape[-2:] and image.shape[0] == 2
    assert (
        cells["centroid_y"].max() < image.shape[-2] and cells["centroid_x"].max() < image.shape[-1]
    )
    assert len(np.unique(labels)) - 1 == mosaic["A01"]
    labels_group = zarr.open_group(omezarr.well_path(store, "A", 1) / "0" / "labels", mode="r")
    listed = labels_group.attrs.get("ome", labels_group.attrs).get("labels")
    assert listed == ["nuclei"]  # OME-NGFF: the image's labels group names its label images
    heatmap = latest_metadata(hcs_instance, ["nuclei_count", "wells"], "overlap_nuclei")["heatmap"]
    assert heatmap.startswith("![objects per well](data:image/png;base64,")


def test_a_real_z_stack_runs_through_read_projection_and_segmentation(
    hcs_home: Path, hcs_instance
) -> None:
    volume = stardist_image("img3d.tif")
    plate = hcs_home / "plates" / "img3d_plate"
    for z, plane in enumerate(volume, 1):
        folder = plate / "TimePoint_1" / f"ZStep_{z}"
        folder.mkdir(parents=True)
        tifffile.imwrite(folder / "A01_s1_w1.tif", plane)
    (plate / "img3d_plate.HTD").write_text('"XSites", 1\n"YSites", 1\n"WaveName1", "nuclei"\n')
    pipeline = Pipeline(
        [
            FunctionStep("projected", "project_z"),
            FunctionStep("nuclei", "segment_nuclei", materialize=True),
            FunctionStep("cells", "measure_objects", {"labels": "nuclei"}, reads=["nuclei"]),
        ],
        name="z_count",
    )
    found = run([pipeline], plate)["z_count"].set_index("well").loc["A01", "objects"]
    direct = len(np.unique(segment_nuclei(project_z(volume, "max"))[0])) - 1
    print(f"img3d through the pipeline: {found} nuclei (the volume holds 51)")
    # the same as the science on the volume: all 31 planes read (how many of the
    # 51 a projection can show: test_segmentation.py)
    assert found == direct > 0
