"""Z-stacks and channel names read from vendor plate folders (issue 30): ImageXpress
``ZStep_<n>`` folders and ``.HTD`` wave names, Opera Phenix planes and ``Index.xml`` channel
names, the manifest's ``channel_name`` column, a missing plane, and demo plates with z."""

import re
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import tifffile
from scipy import ndimage

from imaging_assets.definitions import defs
from imaging_assets.demo import read_truth, write_demo_plate
from imaging_assets.inputs import register_plate
from imaging_assets.partitions import plates
from imaging_assets.science.layouts import LayoutError, column_safe, parse_plate
from imaging_assets.science.synthetic import TileGrid
from platform_core import cli, runstats
from tests.support import store as data_store

GRID = TileGrid(rows=2, cols=2, tile=64)  # 4 sites of 64 px: plates of a few KB
SAFE = re.compile(r"[A-Za-z0-9_]+")


def _tiff(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16))


def _htd(plate: Path, *lines: str) -> None:
    grid = ['"XSites", 2', '"YSites", 2']
    (plate / "plate.HTD").write_text("\n".join(['"HTSInfoFile", Version 1.0', *grid, *lines]))


def test_imagexpress_z_comes_from_the_zstep_folder(tmp_path: Path) -> None:
    plate = tmp_path / "ix"
    for site in range(1, 5):
        for folder in ("ZStep_1", "zstep_2", "ZSTEP_3"):  # any case
            _tiff(plate / "TimePoint_1" / folder / f"A01_s{site}_w1.tif")
    _htd(plate)
    layout = parse_plate(plate)
    assert layout.microscope == "ImageXpress" and (layout.grid_rows, layout.grid_cols) == (2, 2)
    assert layout.tiles.groupby("z").size().to_dict() == {1: 4, 2: 4, 3: 4}
    folders = layout.tiles["path"].map(lambda p: Path(p).parent.name.lower())
    assert (folders == "zstep_" + layout.tiles["z"].astype(str)).all()


def test_a_name_and_folder_that_disagree_on_z_are_refused(tmp_path: Path) -> None:
    plate = tmp_path / "ix"
    _tiff(plate / "TimePoint_1" / "ZStep_2" / "A01_s1_w1_z001.tif")
    with pytest.raises(LayoutError) as refused:
        parse_plate(plate)
    assert "ZStep_2/A01_s1_w1_z001.tif: its name says z 1 but its folder ZStep_2 says z 2" in str(
        refused.value
    )


def test_two_files_of_one_plane_are_refused_naming_both(tmp_path: Path) -> None:
    """A projection beside the z planes: both files claim z 1 of site 1."""
    plate = tmp_path / "ix"
    _tiff(plate / "TimePoint_1" / "A01_s1_w1.tif")
    _tiff(plate / "TimePoint_1" / "ZStep_1" / "A01_s1_w1.tif")
    with pytest.raises(LayoutError) as refused:
        parse_plate(plate)
    message = str(refused.value)
    assert "well A01 site 1 channel 1 z 1 is in 2 files" in message
    assert str(plate / "TimePoint_1" / "A01_s1_w1.tif") in message
    assert str(plate / "TimePoint_1" / "ZStep_1" / "A01_s1_w1.tif") in message


def test_opera_planes_and_index_xml_channel_names(tmp_path: Path) -> None:
    """Names from the ``<Maps>`` entries and from the ``<Images>`` (both real formats)."""
    plate = tmp_path / "opera"
    images = []
    for field, (x, y) in enumerate([(0, 0), (1e-4, 0), (0, -1e-4), (1e-4, -1e-4)], start=1):
        for plane in (1, 2):
            for channel in (1, 2):
                _tiff(
                    plate / "Images" / f"r02c03f{field:02d}p{plane:02d}-ch{channel}sk1fk1fl1.tiff"
                )
                named = "<ChannelName>HOECHST 33342</ChannelName>" if channel == 1 else ""
                images.append(
                    f"<Image><FieldID>{field}</FieldID><PlaneID>{plane}</PlaneID>"
                    f"<ChannelID>{channel}</ChannelID>{named}"
                    f'<PositionX Unit="m">{x}</PositionX><PositionY Unit="m">{y}</PositionY>'
                    '<ImageResolutionX Unit="m">6.5e-07</ImageResolutionX></Image>'
                )
    maps = '<Maps><Map><Entry ChannelID="2"><ChannelName>Alexa 488</ChannelName></Entry></Map>'
    (plate / "Images" / "Index.xml").write_text(
        '<EvaluationInputData xmlns="http://www.perkinelmer.com/PEHH/HarmonyV5">'
        f"{maps}</Maps><Images>{''.join(images)}</Images></EvaluationInputData>"
    )
    layout = parse_plate(plate)
    assert layout.microscope == "Opera Phenix" and set(layout.tiles["well"]) == {"B03"}
    assert layout.tiles.groupby("z").size().to_dict() == {1: 8, 2: 8}
    assert layout.channel_names == {1: "HOECHST_33342", 2: "Alexa_488"}


def test_htd_wave_names_are_made_safe_for_column_names(tmp_path: Path) -> None:
    plate = tmp_path / "ix"
    for channel in range(1, 6):
        _tiff(plate / "TimePoint_1" / f"A01_s1_w{channel}.tif")
    _htd(
        plate,
        '"NWavelengths", 4',
        '"WaveName1", "DAPI"',
        '"WaveName2", "GFP-1"',
        '"WaveName3", "gfp 1"',  # the same column name as channel 2, ignoring case
        '"WaveName4", "???"',  # nothing usable: unnamed
        '"WaveName5", "beyond NWavelengths"',
    )
    layout = parse_plate(plate)
    assert layout.channel_names == {1: "DAPI", 2: "GFP_1", 3: "gfp_1_3"}
    labels = [layout.channel_label(c) for c in range(1, 6)]
    assert labels == ["DAPI", "GFP_1", "gfp_1_3", "ch4", "ch5"]
    assert all(SAFE.fullmatch(f"mean_intensity_{label}") for label in labels)
    assert len({label.lower() for label in labels}) == len(labels)
    assert column_safe("Cy5 (647/ex) µm ") == "Cy5__647_ex___m"
    assert column_safe("x; DROP TABLE t") == "x__DROP_TABLE_t"
    assert column_safe("x" * 100) == "x" * 64
    assert [column_safe(name) for name in (" \t", "-*-", "ä")] == ["", "", ""]  # unnamed


def test_manifest_names_channels_and_a_missing_plane_fails_only_its_well(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    plate = write_demo_plate(tmp_path / "plates", "zplate", "imagexpress", 2, GRID, 2, z_planes=3)
    htd = plate / "zplate.HTD"
    htd.write_text(htd.read_text().replace('"WaveName2", "ch2"', '"WaveName2", "GFP (488)"'))
    (plate / "TimePoint_1" / "ZStep_3" / "A01_s2_w1.tif").unlink()
    instance.add_dynamic_partitions(plates.name, [register_plate(data_store("imaging"), plate)])
    job = defs.resolve_job_def("imaging_plate")
    selection = [dg.AssetKey("plate_manifest"), dg.AssetKey("plate_validation")]
    result = cli.run_job(job, instance, "zplate", selection)
    assert result.success, runstats.run_failure(instance, result.run_id)

    manifest = defs.load_asset_value("plate_manifest", partition_key="zplate", instance=instance)
    names = manifest.drop_duplicates("channel").set_index("channel")["channel_name"]
    assert names.to_dict() == {1: "ch1", 2: "GFP__488_"}
    assert sorted(manifest["z"].unique()) == [1, 2, 3] and len(manifest) == 2 * 4 * 2 * 3 - 1

    wells = defs.load_asset_value("plate_validation", partition_key="zplate", instance=instance)
    assert list(wells["status"]) == ["invalid", "ok"]
    assert wells.iloc[0]["error"] == "missing 1 tile(s): s2 ch1 z3"
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("well A01 left out: missing 1 tile(s): s2 ch1 z3" in m for m in logged)


@pytest.mark.parametrize(
    ("microscope", "plane3"),
    [
        ("imagexpress", "TimePoint_1/ZStep_3/A01_s1_w1.tif"),
        ("opera", "Images/r01c01f01p03-ch1sk1fk1fl1.tiff"),
        ("generic", "A01_s1_c1_z3.tif"),
    ],
)
def test_demo_z_stacks_round_trip(tmp_path: Path, microscope: str, plane3: str) -> None:
    flat = write_demo_plate(tmp_path, "flat", microscope, 2, GRID, 2, 5)
    stack = write_demo_plate(tmp_path, "stack", microscope, 2, GRID, 2, 5, z_planes=3)
    layout = parse_plate(stack)
    assert layout.tiles.groupby("z").size().to_dict() == {1: 16, 2: 16, 3: 16}
    assert (stack / plane3).is_file()
    assert read_truth(stack).equals(read_truth(flat))  # z planes share the site's position
    # the middle plane is the single-plane plate's tile; the outer ones are defocused
    first = "well == 'A01' and site == 1 and channel == 1"
    [flat_tile] = parse_plate(flat).tiles.query(first)["path"]
    planes = layout.tiles.query(first)
    pixels = {
        z: tifffile.imread(path).astype(np.float64)
        for z, path in zip(planes["z"], planes["path"], strict=True)
    }
    assert np.array_equal(pixels[2], tifffile.imread(flat_tile))
    sharpness = {z: ndimage.laplace(p).var() for z, p in pixels.items()}
    assert sharpness[2] > 2 * max(sharpness[1], sharpness[3])
    assert all(abs(pixels[z].mean() - pixels[2].mean()) < 0.02 * pixels[2].mean() for z in (1, 3))


def test_demo_z_planes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="z_planes must be at least 1, not 0"):
        write_demo_plate(tmp_path, "none", "generic", 1, GRID, 1, z_planes=0)
