"""Hostile plate folders dropped into the imaging inbox (issue 29): refused when the sensor
registers them (a link out, declared steps, unsafe YAML, a folder that is itself a link out),
and a tile swapped for a link out after registration is refused when a run opens it: its
well fails naming the file, the other wells complete. A plate from the CLI still follows
links (the user's own files). Each test asserts that nothing outside the data root changed."""

import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import tifffile

from imaging_assets.definitions import defs
from imaging_assets.demo import truth_path, write_demo_plate
from imaging_assets.inputs import PLATES, register_plate, stitched_store
from imaging_assets.partitions import plates
from imaging_assets.science import omezarr
from imaging_assets.science.synthetic import TileGrid
from platform_core import cli, runstats
from platform_core.inbox import MARKER, REJECTED
from tests.support import latest_metadata, outside_untouched, tick
from tests.support import store as data_store

SENSOR = "plate_inbox_sensor"
GRID = TileGrid(rows=2, cols=2, tile=128)  # 4 sites of 128 px: a plate runs in seconds
MARK = 7  # a pixel value below the synthetic background: the outside tiles' centre


@pytest.fixture
def inbox(instance: dg.DagsterInstance) -> Path:
    """The imaging inbox of this test's data root (and instance)."""
    folder = data_store("imaging").inbox()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _tiny_plate(folder: Path) -> Path:
    """A plate folder of one small tile, complete (marker), ready for the sensor."""
    folder.mkdir(parents=True)
    tifffile.imwrite(folder / "A01_s2_w1.tif", np.zeros((8, 8), np.uint16))
    (folder / MARKER).touch()
    return folder


def _rejected(inbox: Path, name: str, result: dg.SensorResult) -> str:
    """Assert ``name`` was rejected by this tick (moved, not registered, no run); its error."""
    assert not (inbox / name).exists() and not (inbox / name).is_symlink()
    assert (inbox / REJECTED / name).is_symlink() or (inbox / REJECTED / name).is_dir()
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert not PLATES.registry.entry(data_store("imaging"), name).exists()
    return (inbox / REJECTED / f"{name}.error.txt").read_text()


def test_a_link_out_of_a_dropped_plate_is_rejected(
    inbox: Path, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    with outside_untouched(tmp_path) as outside:
        plate = _tiny_plate(inbox / "linked")
        (plate / "A01_s1_w1.tif").symlink_to(outside / "secret.txt")
        error = _rejected(inbox, "linked", tick(defs, SENSOR, instance))
        assert "A01_s1_w1.tif: a symbolic link to" in error and "outside the plate" in error
        assert str(outside / "secret.txt") in error and "not for the daemon" not in error


@pytest.mark.parametrize(
    ("func", "kwargs"),
    [
        ("subprocess:run", '{args: [rm, "{outside}/sentinel"]}'),
        ("shutil:rmtree", '{path: "{outside}"}'),
    ],
)
def test_a_dropped_pipeline_declaring_steps_is_rejected_unrun(
    inbox: Path, instance: dg.DagsterInstance, tmp_path: Path, func: str, kwargs: str
) -> None:
    with outside_untouched(tmp_path) as outside:
        plate = _tiny_plate(inbox / "stepped")
        arguments = kwargs.replace("{outside}", str(outside))
        (plate / "pipeline.yaml").write_text(
            f'steps:\n  - name: x\n    func: "{func}"\n    kwargs: {arguments}\n'
        )
        error = _rejected(inbox, "stepped", tick(defs, SENSOR, instance))
        assert "pipeline.yaml line 3: step " in error and f"names func {func!r}" in error
        assert "never defines steps" in error


def test_a_yaml_with_an_unsafe_tag_is_rejected_unrun(
    inbox: Path, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    with outside_untouched(tmp_path) as outside:
        plate = _tiny_plate(inbox / "tagged")
        pwned = outside / "pwned"
        (plate / "settings.yml").write_text(
            f'x: !!python/object/apply:os.system ["touch {pwned}"]\n'
        )
        error = _rejected(inbox, "tagged", tick(defs, SENSOR, instance))
        assert "settings.yml: not valid YAML" in error and "python/object/apply" in error
        assert not pwned.exists()


def test_a_dropped_plate_that_is_a_link_out_is_rejected(
    inbox: Path, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    elsewhere = _tiny_plate(tmp_path / "outside" / "elsewhere")  # complete, outside the root
    with outside_untouched(tmp_path):
        (inbox / "escaped").symlink_to(elsewhere, target_is_directory=True)
        error = _rejected(inbox, "escaped", tick(defs, SENSOR, instance))
        assert f"'escaped' is a symbolic link to {elsewhere}" in error and "never links" in error
        assert (inbox / REJECTED / "escaped").resolve() == elsewhere  # the link moved, not it


def _marked_copies(plate: Path, outside: Path, tiles: list[str]) -> dict[str, Path]:
    """Outside the data root, for each tile a copy of it (same shape and dtype: readable as
    the tile) whose 32 x 32 centre is ``MARK``; and a copy of the plate's truth table."""
    outside.mkdir(exist_ok=True)
    copies = {}
    for name in tiles:
        pixels = tifffile.imread(plate / "TimePoint_1" / name)
        pixels[48:80, 48:80] = MARK
        copies[name] = outside / name
        tifffile.imwrite(copies[name], pixels)
    shutil.copyfile(truth_path(plate), outside / "truth.csv")
    return copies


def _swap(plate: Path, name: str, target: Path) -> None:
    """Replace a tile of the plate by a symbolic link to ``target``."""
    tile = plate / "TimePoint_1" / name
    tile.unlink()
    tile.symlink_to(target)


def _run_swapping(
    instance: dg.DagsterInstance, plate: Path, copies: dict[str, Path], outside: Path
) -> None:
    """Run the plate's job step by step in process, two wells at once: A02's tile becomes a
    link out after the manifest, A03's tile and the truth table after the validation."""
    job = defs.resolve_job_def("imaging_plate")
    config = {"resources": {"imaging": {"config": {"num_workers": 2}}}}

    def run(*assets: str) -> None:
        selection = [dg.AssetKey(a) for a in assets]
        result = cli.run_job(job, instance, plate.name, selection, run_config=config)
        assert result.success, runstats.run_failure(instance, result.run_id)

    run("plate_manifest")
    _swap(plate, "A02_s1_w1.tif", copies["A02_s1_w1.tif"])
    run("plate_validation")
    _swap(plate, "A03_s1_w1.tif", copies["A03_s1_w1.tif"])
    truth_path(plate).unlink()
    truth_path(plate).symlink_to(outside / "truth.csv")
    run("tile_positions", "stitched_plate", "plate_qc")


def _table(instance: dg.DagsterInstance, asset: str, plate: str) -> pd.DataFrame:
    table = defs.load_asset_value(asset, partition_key=plate, instance=instance)
    return table.drop_duplicates("well").set_index("well")


def _marked_pixels(store: Path, well: str) -> int:
    """How many pixels of a stitched well hold ``MARK`` (the outside tiles' centre)."""
    return int(np.count_nonzero(omezarr.read_well(store, well[0], int(well[1:])) == MARK))


def test_a_tile_swapped_for_a_link_out_after_registration_fails_its_well(
    inbox: Path, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    plate = write_demo_plate(inbox, "dropped", "imagexpress", 4, GRID, 1, seed=21)
    (plate / MARKER).touch()
    copies = _marked_copies(plate, tmp_path / "outside", ["A02_s1_w1.tif", "A03_s1_w1.tif"])
    with outside_untouched(tmp_path) as outside:
        result = tick(defs, SENSOR, instance)
        assert [r.partition_key for r in result.run_requests] == ["dropped"]
        assert PLATES.folder(data_store("imaging"), "dropped").confined
        instance.add_dynamic_partitions(plates.name, ["dropped"])
        _run_swapping(instance, plate, copies, outside)

        refused = "outside the allowed roots"
        validation = _table(instance, "plate_validation", "dropped")
        assert list(validation["status"]) == ["ok", "invalid", "ok", "ok"]
        assert (
            f"{plate}/TimePoint_1/A02_s1_w1.tif: cannot be opened" in validation.at["A02", "error"]
        )
        assert refused in validation.at["A02", "error"]
        positions = _table(instance, "tile_positions", "dropped")
        assert list(positions.index) == ["A01", "A03", "A04"]
        assert (
            f"{plate}/TimePoint_1/A03_s1_w1.tif: cannot be opened" in positions.at["A03", "error"]
        )
        assert refused in positions.at["A03", "error"]
        assert "median_error_px" not in latest_metadata(instance, "tile_positions", "dropped")
        stitched = _table(instance, "stitched_plate", "dropped")
        assert dict(stitched["status"]) == {"A01": "written", "A03": "failed", "A04": "written"}
        assert "A03_s1_w1.tif: cannot be opened" in stitched.at["A03", "error"]
        store = stitched_store(data_store("imaging"), "dropped")
        for well in ("A02", "A03"):  # no image, nothing that looks complete
            assert omezarr.well_provenance(store, well[0], int(well[1:])) is None
            assert not (omezarr.well_path(store, well[0], int(well[1:])) / "0").exists()
        index = json.loads((store / "zarr.json").read_text())["attributes"]["ome"]["plate"]
        assert [w["path"] for w in index["wells"]] == ["A/1", "A/4"]
        assert [_marked_pixels(store, w) for w in ("A01", "A04")] == [0, 0]
        assert latest_metadata(instance, "plate_qc", "dropped")["wells"] == 2


def test_a_cli_plate_still_reads_a_tile_swapped_for_a_link_out(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    plate = write_demo_plate(tmp_path / "plates", "mine", "imagexpress", 4, GRID, 1, seed=21)
    copies = _marked_copies(plate, tmp_path / "outside", ["A02_s1_w1.tif", "A03_s1_w1.tif"])
    with outside_untouched(tmp_path) as outside:
        assert register_plate(data_store("imaging"), plate) == "mine"
        assert not PLATES.folder(data_store("imaging"), "mine").confined
        instance.add_dynamic_partitions(plates.name, ["mine"])
        _run_swapping(instance, plate, copies, outside)
        assert (_table(instance, "plate_validation", "mine")["status"] == "ok").all()
        stitched = _table(instance, "stitched_plate", "mine")
        assert (stitched["status"] == "written").all() and len(stitched) == 4
        assert "median_error_px" in latest_metadata(instance, "tile_positions", "mine")
        store = stitched_store(data_store("imaging"), "mine")
        assert [_marked_pixels(store, w) >= 32 * 32 for w in ("A01", "A02", "A03", "A04")] == [
            False,
            True,
            True,
            False,
        ]


def test_a_plate_folder_swapped_for_a_link_after_registration_is_not_listed(
    inbox: Path, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """The registered folder itself replaced by a link to a folder outside: the manifest
    refuses it, naming the folder, and lists (and stats) nothing there."""
    plate = _tiny_plate(inbox / "moved")
    [request] = tick(defs, SENSOR, instance).run_requests
    instance.add_dynamic_partitions(plates.name, [request.partition_key])
    with outside_untouched(tmp_path) as outside:
        elsewhere = _tiny_plate(outside / "elsewhere")
        shutil.rmtree(plate)
        plate.symlink_to(elsewhere, target_is_directory=True)
        job = defs.resolve_job_def("imaging_plate")
        result = cli.run_job(job, instance, request.partition_key, [dg.AssetKey("plate_manifest")])
        shutil.rmtree(elsewhere)  # (the sentinel folder must be as it was)
    assert not result.success
    failure = runstats.run_failure(instance, result.run_id)
    assert f"plate moved: input file '{plate}' resolves to {elsewhere}" in failure
