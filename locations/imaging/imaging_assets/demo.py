"""Synthetic demo plates in vendor layouts, with the true tile positions beside them.

``write_demo_plate`` writes ``<out>/<name>/`` as an ImageXpress, Opera Phenix or generic
plate and ``<out>/<name>.truth.csv`` (well, site, x, y in pixels). With ``z_planes`` > 1 each
site is a z-stack (ImageXpress ``ZStep_<n>`` folders, Opera Phenix ``pNN``, generic ``_z<n>``):
the middle plane in focus, the others blurred by defocus. Deterministic: the same arguments
give the same bytes.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage

from imaging_assets.science.layouts import row_letters
from imaging_assets.science.synthetic import (
    SATURATION,
    TRUTH_SUFFIX,
    TileGrid,
    htd_text,
    synthetic_well,
)
from platform_core.confine import Opener, open_as_named
from platform_core.io import atomic_write
from platform_core.keys import validate_partition_key

MICROSCOPES = ("imagexpress", "opera", "generic")
PLATE_COLUMNS = 12  # a 96-well plate: rows A-H, columns 1-12
DEMO_GRID = TileGrid()
DEFOCUS_PX = 1.5  # defocus blur (Gaussian sigma, pixels) per plane away from the focal plane


def plate_wells(count: int) -> list[tuple[str, int]]:
    """The first ``count`` wells of a 96-well plate, row by row."""
    if not 1 <= count <= 96:
        raise ValueError(f"wells must be 1..96, not {count}")
    return [(row_letters(1 + i // PLATE_COLUMNS), 1 + i % PLATE_COLUMNS) for i in range(count)]


def truth_path(plate_dir: Path) -> Path:
    return plate_dir.with_name(plate_dir.name + TRUTH_SUFFIX)


def _tile_name(
    microscope: str, row: str, column: int, site: int, channel: int, z: int | None
) -> str:
    """A tile's path in the plate; ``z`` is None on a plate of one plane (no z written)."""
    well = f"{row}{column:02d}"
    if microscope == "imagexpress":
        folder = f"TimePoint_1/ZStep_{z}" if z else "TimePoint_1"
        return f"{folder}/{well}_s{site}_w{channel}.tif"
    if microscope == "opera":
        row_number = ord(row) - ord("A") + 1
        plane = f"p{z or 1:02d}"
        return f"Images/r{row_number:02d}c{column:02d}f{site:02d}{plane}-ch{channel}sk1fk1fl1.tiff"
    suffix = f"_z{z}" if z else ""
    return f"{well}_s{site}_c{channel}{suffix}.tif"


def defocused(tile: np.ndarray, distance: int, seed: list[int]) -> np.ndarray:
    """``tile`` seen ``distance`` planes from the focal plane: blurred (sigma DEFOCUS_PX per
    plane), with fresh read noise drawn from ``seed``; at distance 0 the tile itself."""
    if distance == 0:
        return tile
    blurred = ndimage.gaussian_filter(tile.astype(np.float32), DEFOCUS_PX * distance)
    noisy = blurred + np.random.default_rng(seed).normal(0, 20, tile.shape)
    return np.clip(np.rint(noisy), 0, SATURATION).astype(np.uint16)


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
    z_planes: int = 1,
) -> pd.DataFrame:
    """Write one well's tiles (every z plane); returns its true positions (well, site, x, y)."""
    row, column = well
    tiles, positions = synthetic_well(grid, channels, seed=seed, image=image)
    fields = field_ids(microscope, grid)
    cells = zip(positions["grid_row"], positions["grid_col"], strict=True)
    named = [fields[cell] for cell in cells]
    rename = dict(zip(positions["site"], named, strict=True))
    focus = (z_planes + 1) // 2
    for generated, stack in tiles.items():
        site = rename[generated]
        for channel in range(channels):
            for z in range(1, z_planes + 1):
                plane = z if z_planes > 1 else None
                path = plate / _tile_name(microscope, row, column, site, channel + 1, plane)
                path.parent.mkdir(parents=True, exist_ok=True)
                pixels = defocused(stack[channel], abs(z - focus), [seed, site, channel, z])
                tifffile.imwrite(path, pixels)
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
    z_planes: int = 1,
) -> Path:
    """Write a synthetic plate folder ``out/name`` and its truth table (``workers`` wells at
    once); returns the folder. With ``image``, every well's tiles are cut from that real
    image (at its own jittered positions) instead of a generated field. ``z_planes`` > 1
    makes every site a z-stack of that many planes."""
    if microscope not in MICROSCOPES:
        raise ValueError(f"microscope must be one of {MICROSCOPES}, not {microscope!r}")
    if z_planes < 1:
        raise ValueError(f"z_planes must be at least 1, not {z_planes}")
    plate = out / validate_partition_key(name)
    jobs = [
        (plate, microscope, grid, channels, seed * 1000 + index, well, image, z_planes)
        for index, well in enumerate(plate_wells(wells))
    ]
    if workers > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            truth = list(pool.map(_write_well, *zip(*jobs, strict=True)))
    else:
        truth = [_write_well(*job) for job in jobs]
    if microscope == "imagexpress":
        waves = [f"ch{c}" for c in range(1, channels + 1)]
        htd = htd_text(f"{name} (synthetic demo plate)", grid.rows, grid.cols, waves)
        (plate / f"{name}.HTD").write_text(htd)
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
