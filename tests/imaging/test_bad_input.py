"""Bad plates: each fails (or loses only the bad well) with a message naming what is wrong,
and nothing materialized earlier is lost."""

import os
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import tifffile

from imaging_assets.cli import main
from imaging_assets.inputs import stitched_store
from imaging_assets.partitions import plates
from tests.imaging.support import exit_code, folder_digest, latest_check
from tests.support import latest_metadata
from tests.support import store as data_store


def _run_fails(plate_dir: Path, capsys, *extra: str) -> str:
    capsys.readouterr()
    assert main(["run", str(plate_dir), *extra]) == 1
    return capsys.readouterr().err


def test_unknown_filename_scheme(hcs_home: Path, capsys) -> None:
    plate = hcs_home / "plates" / "unknown_scheme"
    plate.mkdir(parents=True)
    for name in ("scan_001.tif", "scan_002.tif"):
        tifffile.imwrite(plate / name, np.zeros((8, 8), np.uint16))
    error = _run_fails(plate, capsys)
    assert "unknown filename scheme" in error and "'scan_001.tif'" in error
    assert "ImageXpress (A01_s1_w1.tif)" in error


def test_empty_plate_folder(hcs_home: Path, capsys) -> None:
    plate = hcs_home / "plates" / "empty_plate"
    plate.mkdir(parents=True)
    assert "no TIFF images in the plate folder" in _run_fails(plate, capsys)


def test_a_symlink_out_of_the_plate_is_refused(make_plate, hcs_home: Path, capsys) -> None:
    plate = make_plate("symlinked", wells=1, seed=7)
    secret = hcs_home / "outside.tif"
    tifffile.imwrite(secret, np.zeros((8, 8), np.uint16))
    (plate / "TimePoint_1" / "A01_s1_w1.tif").unlink()
    os.symlink(secret, plate / "TimePoint_1" / "A01_s1_w1.tif")
    error = _run_fails(plate, capsys)
    assert "TimePoint_1/A01_s1_w1.tif: symlink points outside the plate" in error


@pytest.mark.parametrize("name", ["../escape", "a/b", "bad..name", ".hidden"])
def test_hostile_plate_names_are_refused(
    make_plate, hcs_instance: dg.DagsterInstance, name: str, capsys
) -> None:
    plate = make_plate("named_ok", wells=1, seed=8)
    registry = data_store("imaging").area("plates")
    registered = sorted(registry.rglob("*")) if registry.exists() else []
    capsys.readouterr()
    assert exit_code(["run", str(plate), "--plate", name]) == 2
    assert f"invalid key {name!r}" in capsys.readouterr().err
    assert name not in hcs_instance.get_dynamic_partitions(plates.name)
    assert (sorted(registry.rglob("*")) if registry.exists() else []) == registered


def test_a_folder_named_with_dots_is_refused(hcs_home: Path, capsys) -> None:
    folder = hcs_home / "plates" / "plate..1"
    folder.mkdir(parents=True)
    capsys.readouterr()
    assert exit_code(["run", str(folder)]) == 2
    assert "invalid key 'plate..1'" in capsys.readouterr().err


def test_bad_tiles_lose_only_their_well(make_plate, hcs_instance: dg.DagsterInstance) -> None:
    plate = make_plate("bad_tiles", wells=4, seed=9)
    folder = plate / "TimePoint_1"
    (folder / "A01_s5_w2.tif").unlink()  # a missing site
    tifffile.imwrite(folder / "A02_s3_w1.tif", np.zeros((300, 300), np.uint16))  # mixed shape
    (folder / "A03_s7_w2.tif").write_bytes(b"II*\x00garbage")  # corrupt header
    assert main(["run", str(plate)]) == 0
    validation = latest_metadata(hcs_instance, "plate_validation", "bad_tiles")
    assert validation["wells_ok"] == 1 and validation["wells_invalid"] == 3
    table = validation["invalid_wells"]
    assert "missing 1 tile(s): s5 ch2 z1" in table
    assert (
        "A02_s3_w1.tif: tile is (300, 300) uint16, the plate's tiles are (384, 384) uint16" in table
    )
    assert "A03_s7_w2.tif: not a readable TIFF" in table
    assert not latest_check(hcs_instance, "plate_validation", "every_well_complete", "bad_tiles")
    stitched = latest_metadata(hcs_instance, "stitched_plate", "bad_tiles")
    assert stitched["wells_written"] == 1  # A04


def test_a_plate_with_no_usable_well_fails(make_plate, capsys) -> None:
    plate = make_plate("all_bad", wells=1, seed=10)
    (plate / "TimePoint_1" / "A01_s2_w1.tif").unlink()
    error = _run_fails(plate, capsys)
    assert "no well can be processed" in error and "missing 1 tile(s): s2 ch1 z1" in error


def test_unknown_well_filter(make_plate, capsys) -> None:
    plate = make_plate("filtered", wells=1, seed=11)
    error = _run_fails(plate, capsys, "--wells", "H12")
    assert "wells ['H12'] are not valid wells of this plate" in error


def test_a_broken_rerun_keeps_the_stitched_plate(
    make_plate, hcs_instance: dg.DagsterInstance, capsys
) -> None:
    plate = make_plate("kept", wells=1, seed=12)
    assert main(["run", str(plate)]) == 0
    store = stitched_store(data_store("imaging"), "kept")
    stitched_before = folder_digest(store)
    positions_before = latest_metadata(hcs_instance, "tile_positions", "kept")
    shutil.rmtree(plate / "TimePoint_1")  # the plate folder is emptied by mistake
    assert "no TIFF images" in _run_fails(plate, capsys)
    assert folder_digest(store) == stitched_before
    assert latest_metadata(hcs_instance, "tile_positions", "kept") == positions_before
