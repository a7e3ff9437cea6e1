"""Pure imaging science against ground truth and hand-computed values."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from imaging_assets.demo import read_truth, write_demo_plate
from imaging_assets.science import omezarr
from imaging_assets.science.layouts import LayoutError, parse_plate, row_letters, row_number
from imaging_assets.science.qc import focus_score, intensity_stats
from imaging_assets.science.registration import (
    PairOffset,
    RegistrationParams,
    position_errors,
    register_tiles,
    solve_positions,
)
from imaging_assets.science.stitch import feather_weights, nominal_shape, stitch
from imaging_assets.science.synthetic import TileGrid, synthetic_well
from imaging_assets.science.tiles import TileError, TileHeader, read_tile, tile_header


def _register(grid: TileGrid, seed: int) -> pd.Series:
    tiles, truth = synthetic_well(grid, 1, seed)
    sites = truth[["site", "grid_row", "grid_col"]]
    found, _ = register_tiles(
        [tiles[s][0] for s in sites["site"]], sites, (grid.step, grid.step), RegistrationParams()
    )
    return position_errors(found.assign(well="A01"), truth.assign(well="A01"))["error_px"]


@pytest.mark.parametrize(
    ("tile", "overlap"), [(1024, 0.1), (512, 0.05), (512, 0.2)], ids=["1024-10%", "5%", "20%"]
)
def test_positions_match_the_truth_within_the_target(tile: int, overlap: float) -> None:
    errors = pd.concat([_register(TileGrid(tile=tile, overlap=overlap), seed) for seed in (1, 2)])
    assert errors.median() <= 0.5
    assert errors.max() <= 1.5


def test_a_blank_tile_falls_back_to_the_stage_position() -> None:
    grid = TileGrid(tile=512, jitter=0.0)
    tiles, truth = synthetic_well(grid, 1, 3)
    images = [tiles[s][0] for s in truth["site"]]
    images[4] = np.full_like(images[4], 1000)  # the centre tile shows nothing
    found, pairs = register_tiles(
        images,
        truth[["site", "grid_row", "grid_col"]],
        (grid.step, grid.step),
        RegistrationParams(),
    )
    untrusted = [p for p in pairs if not p.trusted]
    assert {p.a for p in untrusted} | {p.b for p in untrusted} >= {4}
    assert len(untrusted) == 4  # its four neighbour pairs
    # no jitter: the stage position is the truth, so the fallback lands on it
    errors = position_errors(found.assign(well="A01"), truth.assign(well="A01"))["error_px"]
    assert errors.max() <= 0.5


def test_least_squares_splits_a_disagreement_by_weight() -> None:
    # tile 1 is 10 px right of tile 0 by one pair; 2 is 10 px right of 1; the 0-2 pair says 23
    pairs = [
        PairOffset(0, 1, 0.0, 10.0, 1.0, True),
        PairOffset(1, 2, 0.0, 10.0, 1.0, True),
        PairOffset(0, 2, 0.0, 23.0, 1.0, True),
    ]
    positions = solve_positions(3, pairs)
    # minimise (x1-10)^2 + (x2-x1-10)^2 + (x2-23)^2 -> x1 = 11, x2 = 22
    np.testing.assert_allclose(positions[:, 1], [0.0, 11.0, 22.0], atol=1e-9)
    untrusted = [*pairs[:2], PairOffset(0, 2, 0.0, 23.0, 0.0, False)]
    # an untrusted pair barely pulls (weight 1e-3): 3 px of disagreement move tiles by < 0.01 px
    np.testing.assert_allclose(solve_positions(3, untrusted)[:, 1], [0.0, 10.0, 20.0], atol=0.01)


def test_stitching_keeps_single_tile_pixels_and_feathers_overlaps() -> None:
    left = np.full((1, 4, 6), 100, np.uint16)
    right = np.full((1, 4, 6), 200, np.uint16)
    mosaic = stitch([left, right], np.array([[0.0, 0.0], [0.0, 4.0]]))
    assert mosaic.shape == (1, 4, 10)
    assert (mosaic[0, :, :4] == 100).all() and (mosaic[0, :, 6:] == 200).all()
    # overlap columns 4, 5: left weights min(row ramp, 2, 1), right weights min(row ramp, 1, 2)
    weights = feather_weights((4, 6))
    expected = (100 * weights[:, 4:6] + 200 * weights[:, 0:2]) / (weights[:, 4:6] + weights[:, 0:2])
    np.testing.assert_array_equal(mosaic[0, :, 4:6], np.rint(expected))
    # a fixed shape cuts or pads at the bottom / right
    assert stitch([left, right], np.array([[0.0, 0.0], [0.0, 4.0]]), (5, 8)).shape == (1, 5, 8)
    assert nominal_shape((3, 3), (921.6, 921.6), (1024, 1024)) == (2867, 2867)


def test_well_image_round_trip_and_plate_opens_in_ome_zarr(tmp_path: Path) -> None:
    store = tmp_path / "p.ome.zarr"
    image = np.random.default_rng(0).integers(0, 4000, (2, 1, 600, 700)).astype(np.uint16)
    omezarr.prepare_plate(store, [("A", 1), ("B", 12)])
    for row, column in [("A", 1), ("B", 12)]:
        omezarr.write_well(store, row, column, image, 0.65, ["ch1", "ch2"], {"fingerprint": row})
    omezarr.write_plate_index(store, "p", [("A", 1), ("B", 12)])
    np.testing.assert_array_equal(omezarr.read_well(store, "B", 12), image)
    assert omezarr.read_well(store, "A", 1, level=1).shape == (2, 1, 300, 350)
    assert omezarr.well_provenance(store, "B", 12)["fingerprint"] == "B"
    assert omezarr.well_provenance(store, "C", 3) is None
    assert not list(store.rglob("*.partial"))  # no temporary groups left
    nodes = list(Reader(parse_url(str(store)))())
    plate = nodes[0].zarr.root_attrs["plate"]
    assert [w["path"] for w in plate["wells"]] == ["A/1", "B/12"]
    assert nodes[0].data[0].shape[-2:] == (2 * 600, 2 * 700)  # 2 rows x 2 columns of wells
    field = omezarr.well_path(store, "A", 1) / "0"
    datasets = zarr.open_group(field, mode="r").attrs["ome"]["multiscales"][0]["datasets"]
    assert datasets[1]["coordinateTransformations"][0]["scale"] == [1.0, 1.0, 1.3, 1.3]


def test_focus_and_saturation() -> None:
    rng = np.random.default_rng(0)
    sharp = (rng.random((200, 200)) * 1000 + 1000).astype(np.uint16)
    blurred = np.full_like(sharp, int(sharp.mean()))
    assert focus_score(sharp) > 100 * focus_score(
        blurred + rng.integers(0, 2, sharp.shape, dtype=np.uint16)
    )
    stats = intensity_stats(sharp)
    assert (stats["p1"], stats["p99"]) == tuple(
        np.percentile(sharp, [1, 99], method="inverted_cdf")
    )
    assert stats["mean"] == pytest.approx(sharp.mean()) and stats["std"] == pytest.approx(
        sharp.std()
    )
    saturated = sharp.copy()
    saturated[:10, :20] = 65535  # 200 of 40,000 pixels
    assert intensity_stats(saturated)["saturated_fraction"] == pytest.approx(200 / 40000)


def test_each_microscope_layout_is_parsed_to_the_true_grid(tmp_path: Path) -> None:
    grid = TileGrid(rows=2, cols=3, tile=64, jitter=0.0)
    for microscope in ("imagexpress", "opera"):
        plate = write_demo_plate(tmp_path, microscope, microscope, 2, grid, 2, 0)
        layout = parse_plate(plate)
        truth = read_truth(plate)
        assert (layout.grid_rows, layout.grid_cols) == (2, 3)
        assert len(layout.tiles) == 2 * 6 * 2
        merged = layout.tiles.merge(truth, on=["well", "site"])
        # the true tile positions follow the parsed grid (row-major sites, step 57.6 px)
        np.testing.assert_allclose(merged["x"], merged["grid_col"] * grid.step, atol=1e-6)
        np.testing.assert_allclose(merged["y"], merged["grid_row"] * grid.step, atol=1e-6)
    assert layout.microscope == "Opera Phenix"
    assert layout.pixel_size_um == pytest.approx(0.65)
    assert layout.step_px == pytest.approx(grid.step)
    # generic needs a square site grid without a layout file
    plate = write_demo_plate(tmp_path, "generic", "generic", 1, grid, 1, 0)
    with pytest.raises(LayoutError, match="do not form a square grid"):
        parse_plate(plate)
    assert [row_letters(n) for n in (1, 8, 26, 27)] == ["A", "H", "Z", "AA"]
    assert [row_number(r) for r in ("A", "H", "AA")] == [1, 8, 27]


def test_tile_reading_names_the_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.zeros((32, 32), np.uint16))
    header = tile_header(str(good))
    assert header == TileHeader((32, 32), "uint16")
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(TileError, match=r"truncated\.tif"):
        read_tile(str(truncated), header)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all")
    with pytest.raises(TileError, match=r"junk\.tif: not a readable TIFF"):
        tile_header(str(junk))


def test_z_planes_and_prefixed_imagexpress_names_are_parsed(tmp_path: Path) -> None:
    plate = tmp_path / "zplate"
    plate.mkdir()
    for site in range(1, 5):
        for z in (1, 2):
            name = f"MyPlate_B03_s{site}_w1_z{z:03d}.tif"
            tifffile.imwrite(plate / name, np.zeros((16, 16), np.uint16))
    tifffile.imwrite(plate / "MyPlate_B03_s1_w1_thumb.tif", np.zeros((4, 4), np.uint16))
    layout = parse_plate(plate)
    assert layout.microscope == "ImageXpress" and (layout.grid_rows, layout.grid_cols) == (2, 2)
    assert sorted(layout.tiles["z"].unique()) == [1, 2] and len(layout.tiles) == 8
    assert set(layout.tiles["well"]) == {"B03"}
    site4 = layout.tiles[layout.tiles["site"] == 4].iloc[0]
    assert (site4["grid_row"], site4["grid_col"]) == (1, 1)
