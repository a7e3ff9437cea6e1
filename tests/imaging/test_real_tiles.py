"""Registration on content nobody here generated (real images shipped with scikit-image) and
with what real plates do: an overlap other than the stated one, uneven illumination, and
whole-pixel truth that must come out whole (no sub-pixel bias)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage import data

from imaging_assets.cli import main
from imaging_assets.demo import write_demo_plate
from imaging_assets.inputs import stitched_store
from imaging_assets.science import omezarr
from imaging_assets.science.registration import (
    RegistrationParams,
    StepEstimate,
    consensus_step,
    flat_field,
    neighbour_pairs,
    position_errors,
    register_tiles,
    wide_pair_offset,
)
from imaging_assets.science.synthetic import TileGrid, synthetic_well
from tests.support import latest_metadata
from tests.support import store as data_store

REAL_IMAGES = {  # grey levels of real pictures: a stained tissue micrograph, a sky survey
    # (sparse point-like sources, like nuclei), a fundus photograph (vessels, dark corners)
    "immunohistochemistry": lambda: data.immunohistochemistry().mean(axis=2),
    "hubble_deep_field": lambda: data.hubble_deep_field().mean(axis=2),
    "retina": lambda: data.retina().mean(axis=2),
}
PARAMS = RegistrationParams()


def well_from(image: np.ndarray, overlap: float, seed: int, **grid) -> tuple[list, pd.DataFrame]:
    """A 3 x 3 well cut from ``image`` with vignetting and noise, tiles as large as fit."""
    tile = int((min(image.shape) - 12) / (1 + 2 * (1 - overlap)))
    tiles, truth = synthetic_well(
        TileGrid(tile=tile, overlap=overlap, **grid), channels=1, seed=seed, image=image
    )
    return [tiles[s][0].astype(np.float32) for s in truth["site"]], truth


def estimate_and_register(
    tiles: list[np.ndarray], truth: pd.DataFrame
) -> tuple[pd.DataFrame, StepEstimate, list]:
    """The plate's flow on one well: flat field, wide survey, consensus, registration."""
    flat = flat_field(tiles)
    tiles = [t / flat for t in tiles]
    offsets = [
        (d, *wide_pair_offset(tiles[a], tiles[b], d, PARAMS)) for a, b, d in neighbour_pairs(truth)
    ]
    estimate = consensus_step(offsets, PARAMS.min_quality)
    assert estimate is not None
    params = replace(PARAMS, max_shift=estimate.search_reach())
    found, pairs = register_tiles(tiles, truth, estimate, params)
    return found, estimate, pairs


def errors(found: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    return position_errors(found.assign(well="A01"), truth.assign(well="A01"))["error_px"]


@pytest.mark.parametrize("name", sorted(REAL_IMAGES))
@pytest.mark.parametrize("overlap", [0.05, 0.15, 0.25])
def test_real_image_tiles_at_an_unknown_overlap(name: str, overlap: float) -> None:
    tiles, truth = well_from(REAL_IMAGES[name](), overlap, seed=int(overlap * 100))
    found, estimate, _ = estimate_and_register(tiles, truth)
    # the consensus is a median of jittered pairs: within the stage jitter (3 px) of the step
    step = tiles[0].shape[0] * (1 - overlap)
    assert estimate.right[1] == pytest.approx(step, abs=3.0)
    assert estimate.down[0] == pytest.approx(step, abs=3.0)
    error = errors(found, truth)
    assert error.median() <= 0.5 and error.max() <= 1.5, error.describe()


def test_the_stated_overlap_alone_misplaces_tiles_when_it_is_wrong() -> None:
    """What the estimate fixes: registered around the stated 10 % when the tiles overlap
    25 %, the pairs fall back to the stage and every tile is pixels off."""
    tiles, truth = well_from(REAL_IMAGES["immunohistochemistry"](), 0.25, seed=1)
    stated = tiles[0].shape[0] * 0.9
    found, _ = register_tiles(tiles, truth, (stated, stated), replace(PARAMS, max_shift=8))
    assert errors(found, truth).median() > 5


@pytest.mark.parametrize("content", ["blobs", "immunohistochemistry"])
def test_whole_pixel_offsets_come_out_whole_under_an_illumination_ramp(content: str) -> None:
    """No sub-pixel bias: with whole-pixel truth and a 10 % ramp (plus vignetting) across every
    tile, each trusted pair's offset rounds to the true one, on blob-like and textured
    content alike."""
    grid = {"whole_pixels": True, "ramp": 0.10}
    if content == "blobs":  # the generated cell field (nuclei as blobs)
        tiles_by_site, truth = synthetic_well(TileGrid(overlap=0.15, **grid), 1, seed=5)
        tiles = [tiles_by_site[s][0].astype(np.float32) for s in truth["site"]]
    else:
        tiles, truth = well_from(REAL_IMAGES[content](), 0.15, seed=5, **grid)
    found, _, pairs = estimate_and_register(tiles, truth)
    trusted = [p for p in pairs if p.trusted]
    assert len(trusted) >= 10
    for pair in trusted:
        true_dy = truth["y"].iloc[pair.b] - truth["y"].iloc[pair.a]
        true_dx = truth["x"].iloc[pair.b] - truth["x"].iloc[pair.a]
        assert (round(pair.dy), round(pair.dx)) == (true_dy, true_dx), pair
    assert errors(found, truth).max() <= 0.5


def test_a_plate_of_real_tiles_run_at_the_default_overlap(hcs_home: Path, hcs_instance) -> None:
    """`hcs run` with the default (10 %) on an ImageXpress plate whose real-image tiles overlap
    15 %: the overlap is estimated, reported beside the stated one, and the tiles land."""
    grid = TileGrid(rows=2, cols=2, tile=256, overlap=0.15)
    image = REAL_IMAGES["immunohistochemistry"]()
    plate = write_demo_plate(
        hcs_home / "plates", "real_15pct", "imagexpress", 3, grid, 1, seed=4, image=image
    )
    assert main(["run", str(plate)]) == 0
    meta = latest_metadata(hcs_instance, "tile_positions", "real_15pct")
    assert meta["stated_overlap"] == pytest.approx(0.10)
    assert meta["estimated_overlap_x"] == pytest.approx(0.15, abs=0.012)
    assert meta["estimated_overlap_y"] == pytest.approx(0.15, abs=0.012)
    assert meta["median_error_px"] <= 0.5 and meta["max_error_px"] <= 1.5


def test_flat_field_before_blending_restores_the_real_image(hcs_home: Path) -> None:
    """With `--flat-field-blend` the stitched mosaic of vignetted real tiles follows the
    picture they were cut from (each well its own window of it) more closely than the mosaic
    of the raw tiles."""
    grid = TileGrid(rows=2, cols=2, tile=320, overlap=0.15)
    image = REAL_IMAGES["retina"]()
    agreement = {}
    for blend in (False, True):
        name = f"real_blend_{blend}".lower()
        plate = write_demo_plate(
            hcs_home / "plates", name, "imagexpress", 8, grid, 1, seed=9, image=image
        )
        assert main(["run", str(plate), *(["--flat-field-blend"] if blend else [])]) == 0
        truth = pd.read_csv(plate.with_name(f"{name}.truth.csv"))
        scores = []
        for well, where in truth.groupby("well"):
            mosaic = omezarr.read_well(
                stitched_store(data_store("imaging"), name), well[0], int(well[1:])
            )[0, 0]
            top, left = round(where["y"].min()), round(where["x"].min())
            window = image[top : top + mosaic.shape[0], left : left + mosaic.shape[1]]
            covered = mosaic[: window.shape[0], : window.shape[1]] > 0
            scores.append(
                np.corrcoef(mosaic[: window.shape[0], : window.shape[1]][covered], window[covered])[
                    0, 1
                ]
            )
        agreement[blend] = float(np.median(scores))
    assert agreement[True] > agreement[False] + 0.01, agreement


def test_blank_tiles_give_no_estimate_rather_than_a_wrong_one() -> None:
    """Tiles of noise alone (an empty well): no pair is trusted, so no step is estimated and
    the plate falls back to the stated overlap (with a warning in the asset)."""
    rng = np.random.default_rng(3)
    tiles = [rng.normal(1000, 20, (128, 128)).astype(np.float32) for _ in range(9)]
    grid = pd.DataFrame(
        {"grid_row": [i // 3 for i in range(9)], "grid_col": [i % 3 for i in range(9)]}
    )
    offsets = [
        (d, *wide_pair_offset(tiles[a], tiles[b], d, PARAMS)) for a, b, d in neighbour_pairs(grid)
    ]
    assert max(q for *_, q in offsets) < PARAMS.min_quality
    assert consensus_step(offsets, PARAMS.min_quality) is None
