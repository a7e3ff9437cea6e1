"""Synthetic demo plates in vendor layouts, with the true tile positions beside them.

``write_demo_plate`` writes ``<out>/<name>/`` as an ImageXpress, Opera Phenix or generic
plate and ``<out>/<name>.truth.csv`` (well, site, x, y in pixels). Deterministic: the same
arguments give the same bytes.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import tifffile

from imaging_assets.science.layouts import row_letters
from imaging_assets.science.synthetic import TileGrid, synthetic_well
from platform_core.confine import Opener, open_as_named
from platform_core.io import atomic_write
from platform_core.keys import validate_partition_key

MICROSCOPES = ("imagexpress", "opera", "generic")
TRUTH_SUFFIX = ".truth.csv"
PLATE_COLUMNS = 12  # a 96-well plate: rows A-H, columns 1-12
DEMO_GRID = TileGrid()


def plate_wells(count: int) -> list[tuple[str, int]]:
    """The first ``count`` wells of a 96-well plate, row by row."""
    if not 1 <= count <= 96:
        raise ValueError(f"wells must be 1..96, not {count}")
    return [(row_letters(1 + i // PLATE_COLUMNS), 1 + i % PLATE_COLUMNS) for i in range(count)]


def truth_path(plate_dir: Path) -> Path:
    return plate_dir.with_name(plate_dir.name + TRUTH_SUFFIX)


def _tile_name(microscope: str, row: str, column: int, site: int, channel: int) -> str:
    if microscope == "imagexpress":
        return f"TimePoint_1/{row}{column:02d}_s{site}_w{channel}.tif"
    if microscope == "opera":
        row_number = ord(row) - ord("A") + 1
        return f"Images/r{row_number:02d}c{column:02d}f{site:02d}p01-ch{channel}sk1fk1fl1.tiff"
    return f"{row}{column:02d}_s{site}_c{channel}.tif"


def field_ids(microscope: str, grid: TileGrid) -> dict[tuple[int, int], int]:
    """(grid row, grid col) -> site number in the file names: row-major, except Opera
    Phenix, which numbers fields in a spiral from the centre (right, down, left, up, ...)."""
    if microscope != "opera":
        return {(r, c): r * grid.cols + c + 1 for r in range(grid.rows) for c in range(grid.cols)}
    row, col = (grid.rows - 1) // 2, (grid.cols - 1) // 2
    ids, run, turn = {(row, col): 1}, 1, 0
    moves = ((0, 1), (1, 0), (0, -1), (-1, 0))
    while len(ids) < grid.rows * grid.cols:
        for _ in range(2):  # each run length is walked twice before it grows
            dr, dc = moves[turn % 4]
            for _ in range(run):
                row, col = row + dr, col + dc
                if 0 <= row < grid.rows and 0 <= col < grid.cols:
                    ids[(row, col)] = len(ids) + 1
            turn += 1
        run += 1
    return ids


def _htd(name: str, grid: TileGrid, channels: int) -> str:
    lines = [
        '"HTSInfoFile", Version 1.0',
        f'"Description", "{name} (synthetic demo plate)"',
        '"TimePoints", 1',
        '"XWells", 12',
        '"YWells", 8',
        f'"XSites", {grid.cols}',
        f'"YSites", {grid.rows}',
        '"Waves", TRUE',
        f'"NWavelengths", {channels}',
        *[f'"WaveName{c}", "ch{c}"' for c in range(1, channels + 1)],
        '"EndFile"',
    ]
    return "\n".join(lines) + "\n"


def _opera_index(grid: TileGrid, pixel_size_um: float) -> str:
    metres = pixel_size_um * 1e-6
    images = []
    fields = field_ids("opera", grid)
    for row in range(grid.rows):
        for col in range(grid.cols):
            images.append(
                "<Image>"
                f"<FieldID>{fields[(row, col)]}</FieldID>"
                f'<PositionX Unit="m">{col * grid.step * metres:.9e}</PositionX>'
                f'<PositionY Unit="m">{-row * grid.step * metres:.9e}</PositionY>'
                f'<ImageResolutionX Unit="m">{metres:.9e}</ImageResolutionX>'
                "</Image>"
            )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<EvaluationInputData xmlns="http://www.perkinelmer.com/PEHH/HarmonyV5">'
        f"<Plates><Plate><Name>{escape('demo')}</Name></Plate></Plates>"
        f"<Images>{''.join(images)}</Images></EvaluationInputData>\n"
    )


def _write_well(
    plate: Path,
    microscope: str,
    grid: TileGrid,
    channels: int,
    seed: int,
    well: tuple[str, int],
    image: np.ndarray | None = None,
) -> pd.DataFrame:
    """Write one well's tiles; returns its true positions (well, site, x, y)."""
    row, column = well
    tiles, positions = synthetic_well(grid, channels, seed=seed, image=image)
    fields = field_ids(microscope, grid)
    cells = zip(positions["grid_row"], positions["grid_col"], strict=True)
    named = [fields[cell] for cell in cells]
    rename = dict(zip(positions["site"], named, strict=True))
    for generated, stack in tiles.items():
        for channel in range(channels):
            path = plate / _tile_name(microscope, row, column, rename[generated], channel + 1)
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, stack[channel])
    return positions.assign(well=f"{row}{column:02d}", site=named)[["well", "site", "x", "y"]]


def write_demo_plate(
    out: Path,
    name: str,
    microscope: str = "imagexpress",
    wells: int = 4,
    grid: TileGrid = DEMO_GRID,
    channels: int = 2,
    seed: int = 0,
    pixel_size_um: float = 0.65,
    workers: int = 1,
    image: np.ndarray | None = None,
) -> Path:
    """Write a synthetic plate folder ``out/name`` and its truth table (``workers`` wells at
    once); returns the folder. With ``image``, every well's tiles are cut from that real
    image (at its own jittered positions) instead of a generated field."""
    if microscope not in MICROSCOPES:
        raise ValueError(f"microscope must be one of {MICROSCOPES}, not {microscope!r}")
    plate = out / validate_partition_key(name)
    jobs = [
        (plate, microscope, grid, channels, seed * 1000 + index, well, image)
        for index, well in enumerate(plate_wells(wells))
    ]
    if workers > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            truth = list(pool.map(_write_well, *zip(*jobs, strict=True)))
    else:
        truth = [_write_well(*job) for job in jobs]
    if microscope == "imagexpress":
        (plate / f"{name}.HTD").write_text(_htd(name, grid, channels))
    elif microscope == "opera":
        (plate / "Images" / "Index.xml").write_text(_opera_index(grid, pixel_size_um))
    table = pd.concat(truth)
    atomic_write(truth_path(plate), lambda tmp: table.to_csv(tmp, index=False))
    return plate


def read_truth(plate_dir: Path, opener: Opener = open_as_named) -> pd.DataFrame | None:
    """The true positions beside a plate folder, if there are any (opened by ``opener``)."""
    path = truth_path(plate_dir)
    if not path.exists():
        return None
    with opener(path) as handle:
        table = pd.read_csv(handle, dtype={"well": str})
    if (
        list(table.columns) != ["well", "site", "x", "y"]
        or not np.isfinite(table[["x", "y"]]).all().all()
    ):
        raise ValueError(f"{path}: expected columns well, site, x, y with finite positions")
    return table
