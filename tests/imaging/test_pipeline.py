"""The plate pipeline through the `hcs` CLI, checked against the true tile positions."""

import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import tifffile
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from imaging_assets.cli import main
from imaging_assets.definitions import defs
from imaging_assets.inputs import stitched_store
from imaging_assets.partitions import plates
from imaging_assets.science import omezarr
from imaging_assets.science.registration import position_errors
from platform_core.inbox import MARKER
from tests.imaging.support import folder_digest, latest_check, truth
from tests.support import latest_metadata, tick
from tests.support import store as data_store


def test_imagexpress_plate_is_stitched_into_a_valid_ome_zarr(
    make_plate, hcs_instance: dg.DagsterInstance, tmp_path: Path, capsys
) -> None:
    plate_dir = make_plate("ix_plate", "imagexpress", wells=3)
    before = folder_digest(plate_dir)
    assert main(["run", str(plate_dir), "--workers", "2"]) == 0
    assert folder_digest(plate_dir) == before  # the plate folder was only read

    # positions against the truth: the targets
    out = tmp_path / "positions.csv"
    assert main(["positions", "--plate", "ix_plate", "--out", str(out)]) == 0
    found = pd.read_csv(out, dtype={"well": str})
    assert list(found.columns) == ["well", "site", "x", "y"] and len(found) == 3 * 9
    errors = position_errors(found, truth(plate_dir))["error_px"]
    assert errors.median() <= 0.5 and errors.max() <= 1.5
    assert latest_check(hcs_instance, "tile_positions", "positions_are_trustworthy", "ix_plate")

    # the OME-Zarr plate opens in ome-zarr and lists the three wells
    capsys.readouterr()
    assert main(["open", "--plate", "ix_plate"]) == 0
    store = Path(capsys.readouterr().out.strip())
    assert store == stitched_store(data_store("imaging"), "ix_plate")
    nodes = list(Reader(parse_url(str(store)))())
    assert [w["path"] for w in nodes[0].zarr.root_attrs["plate"]["wells"]] == ["A/1", "A/2", "A/3"]
    assert latest_check(hcs_instance, "stitched_plate", "plate_opens_in_ome_zarr", "ix_plate")

    # where only one tile covers the mosaic, it holds that tile's pixels exactly
    image = omezarr.read_well(store, "A", 2)
    positions = found[found["well"] == "A02"].set_index("site")
    y, x = np.rint(positions.loc[5, ["y", "x"]].to_numpy(float)).astype(int)
    centre = slice(100, 280)  # well inside site 5, outside every overlap
    tile = tifffile.imread(plate_dir / "TimePoint_1" / "A02_s5_w2.tif")
    np.testing.assert_array_equal(
        image[1, 0, y + 100 : y + 280, x + 100 : x + 280], tile[centre, centre]
    )
    assert image.shape[:2] == (2, 1)  # channels, z

    qc = latest_metadata(hcs_instance, "plate_qc", "ix_plate")
    assert "data:image/png;base64," in qc["montage"]
    assert qc["wells"] == 3


def test_rerun_reuses_every_well_and_a_well_filter_limits_the_work(
    make_plate, hcs_instance: dg.DagsterInstance
) -> None:
    plate_dir = make_plate("rerun_plate", "imagexpress", wells=2, seed=4)
    assert main(["run", str(plate_dir), "--workers", "1"]) == 0
    store = stitched_store(data_store("imaging"), "rerun_plate")
    chunks = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    assert main(["run", str(plate_dir), "--workers", "1"]) == 0
    meta = latest_metadata(hcs_instance, "stitched_plate", "rerun_plate")
    assert (meta["wells_written"], meta["wells_reused"]) == (0, 2)
    positions = latest_metadata(hcs_instance, "tile_positions", "rerun_plate")
    assert positions["wells_registered"] == 0 and positions["wells_reused"] == 2
    unchanged = {p: p.stat().st_mtime_ns for p in chunks if "A/2/0/" in str(p)}
    # a changed tile of A01 (new content) and a run limited to A01: only A01 is redone
    tile = plate_dir / "TimePoint_1" / "A01_s1_w1.tif"
    tifffile.imwrite(tile, np.roll(tifffile.imread(tile), 1, axis=1))
    assert main(["run", str(plate_dir), "--wells", "A1"]) == 0
    meta = latest_metadata(hcs_instance, "stitched_plate", "rerun_plate")
    assert (meta["wells_written"], meta["wells_reused"]) == (1, 1)
    assert {p: p.stat().st_mtime_ns for p in unchanged} == unchanged


def test_opera_plate_uses_index_xml_layout_and_pixel_size(
    make_plate, hcs_instance: dg.DagsterInstance
) -> None:
    plate_dir = make_plate("opera_plate", "opera", wells=2, seed=2)
    assert main(["run", str(plate_dir)]) == 0
    manifest = latest_metadata(hcs_instance, "plate_manifest", "opera_plate")
    assert manifest["microscope"] == "Opera Phenix" and manifest["site_grid"] == "3 x 3"
    positions = latest_metadata(hcs_instance, "tile_positions", "opera_plate")
    assert positions["median_error_px"] <= 0.5 and positions["max_error_px"] <= 1.5
    field = omezarr.well_path(stitched_store(data_store("imaging"), "opera_plate"), "A", 1) / "0"
    ome = json.loads((field / "zarr.json").read_text())["attributes"]["ome"]
    assert ome["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] == [
        1.0,
        1.0,
        0.65,
        0.65,
    ]


def test_status_reports_each_plate(make_plate, hcs_instance, capsys) -> None:
    plate_dir = make_plate("status_plate", "generic", wells=1, seed=3)
    assert main(["run", str(plate_dir)]) == 0
    # progress while it ran (plain lines: not a terminal), read from the instance's steps
    lines = [line for line in capsys.readouterr().err.splitlines() if " s] steps " in line]
    steps = 5 + 4  # the plate's five assets and four checks
    assert lines and all(f"/{steps} done" in line for line in lines), lines
    assert lines[-1].endswith(f"steps {steps}/{steps} done")  # the last line: how it ended
    assert main(["run", str(plate_dir), "--quiet"]) == 0
    assert " s] steps " not in capsys.readouterr().err
    assert main(["status", "--plate", "status_plate", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["status"] == "SUCCESS" and row["microscope"] == "generic"
    assert (row["wells"], row["wells_stitched"], row["wells_invalid"]) == (1, 1, 0)
    assert row["max_error_px"] <= 1.5


def test_inbox_sensor_waits_for_a_complete_plate_and_requests_one_run(
    make_plate, hcs_instance: dg.DagsterInstance
) -> None:
    inbox = data_store("imaging").inbox()
    inbox.mkdir(parents=True, exist_ok=True)
    copied = inbox / "inbox_plate"
    shutil.copytree(make_plate("inbox_source", "imagexpress", wells=1, seed=5), copied)
    first = tick(defs, "plate_inbox_sensor", hcs_instance)
    assert not first.run_requests  # seen once: maybe still copying
    second = tick(defs, "plate_inbox_sensor", hcs_instance, first.cursor)
    [request] = second.run_requests
    assert request.partition_key == "inbox_plate"
    assert second.dynamic_partitions_requests[0].partition_keys == ["inbox_plate"]
    # the same content never runs twice
    third = tick(defs, "plate_inbox_sensor", hcs_instance, second.cursor)
    assert not third.run_requests
    # a marker file makes a plate complete at once; a half-copied one waits
    half = inbox / "marked_plate"
    shutil.copytree(copied, half)
    (half / MARKER).touch()
    fourth = tick(defs, "plate_inbox_sensor", hcs_instance, third.cursor)
    assert [r.partition_key for r in fourth.run_requests] == ["marked_plate"]
    assert plates.name == "plate"


def test_a_failing_well_is_recorded_and_the_others_are_written(
    make_plate, hcs_instance: dg.DagsterInstance
) -> None:
    plate_dir = make_plate("one_bad_well", "imagexpress", wells=3, seed=6)
    bad = plate_dir / "TimePoint_1" / "A02_s4_w1.tif"
    good_bytes = bad.read_bytes()
    bad.write_bytes(good_bytes[: len(good_bytes) // 3])  # header intact, pixels cut short
    assert main(["run", str(plate_dir), "--workers", "2"]) == 0
    positions = latest_metadata(hcs_instance, "tile_positions", "one_bad_well")
    assert positions["failed_wells"] == "A02" and positions["wells_registered"] == 2
    stitched = latest_metadata(hcs_instance, "stitched_plate", "one_bad_well")
    assert (
        "A02_s4_w1.tif: cannot read pixels, truncated or corrupt TIFF" in stitched["failed_wells"]
    )
    assert not latest_check(
        hcs_instance, "stitched_plate", "plate_opens_in_ome_zarr", "one_bad_well"
    )
    store = stitched_store(data_store("imaging"), "one_bad_well")
    plate = json.loads((store / "zarr.json").read_text())["attributes"]["ome"]["plate"]
    assert [w["path"] for w in plate["wells"]] == ["A/1", "A/3"]
    assert not (store / "A" / "2" / "0").exists()
    # the tile is copied again in full: the re-run redoes only A02
    bad.write_bytes(good_bytes)
    assert main(["run", str(plate_dir), "--workers", "2"]) == 0
    positions = latest_metadata(hcs_instance, "tile_positions", "one_bad_well")
    assert (positions["wells_registered"], positions["wells_reused"]) == (1, 2)
    stitched = latest_metadata(hcs_instance, "stitched_plate", "one_bad_well")
    assert (stitched["wells_written"], stitched["wells_reused"]) == (1, 2)
    assert latest_check(hcs_instance, "stitched_plate", "plate_opens_in_ome_zarr", "one_bad_well")
