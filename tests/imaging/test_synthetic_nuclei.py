"""The synthetic nuclei: irregular like real images, tiles that overlap, a plate on disk."""

from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from skimage.measure import regionprops
from skimage.segmentation import expand_labels

from imaging_assets.demo import read_truth
from imaging_assets.science.layouts import parse_plate
from imaging_assets.science.qc import focus_score
from imaging_assets.science.segmentation import segment_nuclei
from imaging_assets.science.synthetic import TileGrid
from imaging_assets.science.synthetic_nuclei import nuclei_scene, nuclei_well, write_nuclei_plate
from tests.imaging.support import folder_digest

OFFSET = 100  # the generator's camera offset, ADU


def _touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        touching = (a != b) & (a > 0) & (b > 0)
        pairs |= set(zip(np.minimum(a, b)[touching], np.maximum(a, b)[touching], strict=True))
    return pairs


def test_a_scene_has_the_irregularities_of_real_images() -> None:
    image, labels = nuclei_scene(seed=7, channels=2)
    assert image.dtype == np.uint16 and image.shape == (2, 512, 512)
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert np.array_equal(nuclei_scene(seed=7, channels=2)[0], image)  # deterministic
    regions = regionprops(labels, intensity_image=image[0].astype(float) - OFFSET)
    areas = np.array([r.area for r in regions])
    brightness = np.array([r.intensity_mean for r in regions])
    assert len(_touching_pairs(labels)) >= 10
    assert areas.std() / areas.mean() > 0.25
    assert max(r.eccentricity for r in regions) > 0.8  # elongated (and mitotic) nuclei
    assert brightness.max() / np.median(brightness) > 2  # a few bright mitotic nuclei
    assert np.median([r.intensity_std / r.intensity_mean for r in regions]) > 0.08  # texture
    far = expand_labels(labels, 15) == 0
    left, right = (np.median(image[0][:, s][far[:, s]]) - OFFSET for s in (np.s_[:50], np.s_[-50:]))
    assert right / left > 1.2  # the illumination ramp
    assert image[0][far].std() > 3  # shot and read noise
    ring = (expand_labels(labels, 6) > 0) & (labels == 0)
    assert image[1][ring].mean() > image[1][labels > 0].mean()  # cytoplasm around nuclei


def test_nuclei_in_tile_overlaps_are_counted_once_by_the_tile_that_owns_them() -> None:
    grid = TileGrid(rows=2, cols=2, tile=256, overlap=0.15, jitter=2.0, whole_pixels=True)
    tiles, positions, nuclei = nuclei_well(grid, seed=5)
    corners = positions[["y", "x"]].to_numpy()
    inside = [
        (nuclei["y"] >= y) & (nuclei["y"] < y + grid.tile) & (nuclei["x"] >= x)
        & (nuclei["x"] < x + grid.tile)
        for y, x in corners
    ]  # fmt: skip
    assert (sum(inside) >= 2).sum() >= 10  # nuclei lying in overlaps
    assert (sum(inside) >= 1).all()  # every true nucleus is in the mosaic
    a, b = (tiles[site][0, 0].astype(float) for site in (1, 2))  # left and right neighbours
    dy, dx = (corners[1] - corners[0]).astype(int)
    shared = np.s_[max(dy, 0) : grid.tile + min(dy, 0), dx:]
    moved = np.s_[max(-dy, 0) : grid.tile - max(dy, 0), : grid.tile - dx]
    assert np.corrcoef(a[shared].ravel(), b[moved].ravel())[0, 1] > 0.9  # one specimen

    centres = corners + grid.tile / 2
    found, owned = 0, 0
    for site, (y, x) in zip(positions["site"], corners, strict=True):
        for region in regionprops(segment_nuclei(tiles[site][0, :1])[0]):
            at = np.add(region.centroid, (y, x))
            found += 1
            owned += np.argmin(np.hypot(*(centres - at).T)) == site - 1
    assert found > 1.05 * len(nuclei)  # overlaps counted twice
    assert abs(owned - len(nuclei)) <= 0.1 * len(nuclei)


def test_a_nuclei_plate_reads_as_an_imagexpress_plate(tmp_path: Path) -> None:
    plate = write_nuclei_plate(tmp_path / "a", "nuc", wells=2, grid_side=2, tile_px=96, z_planes=3)
    layout = parse_plate(plate)
    assert (layout.microscope, layout.grid_rows, layout.grid_cols) == ("ImageXpress", 2, 2)
    assert len(layout.tiles) == 2 * 4 * 2 * 3  # wells x sites x channels x z planes
    assert '"WaveName1", "DAPI"' in (plate / "nuc.HTD").read_text()
    nuclei = pd.read_csv(tmp_path / "a" / "nuc.nuclei.csv", dtype={"well": str})
    assert list(nuclei.columns) == ["well", "y", "x", "area_px"]
    assert set(nuclei["well"]) == {"A01", "A02"}
    assert set(read_truth(plate)["well"]) == {"A01", "A02"}
    planes = [tifffile.imread(path) for path in layout.tiles["path"][:3]]
    assert focus_score(planes[1]) > focus_score(planes[0])  # z 2 is in focus, z 1 is not
    again = write_nuclei_plate(tmp_path / "b", "nuc", wells=2, grid_side=2, tile_px=96, z_planes=3)
    assert folder_digest(again) == folder_digest(plate)
