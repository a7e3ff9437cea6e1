"""Reading tiles safely, and the "compile" checks of a plate before any pixel is processed.
A tile is opened by the plate's ``Opener`` (science/layouts.py): a file it refuses (a link out
of a dropped plate) is a TileError naming the file, like a damaged one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import tifffile

from platform_core.confine import Opener, open_as_named


class TileError(ValueError):
    """A tile that cannot be used (the message names the file)."""


@dataclass(frozen=True)
class TileHeader:
    shape: tuple[int, int]
    dtype: str


def _opened(path: str, opener: Opener) -> BinaryIO:
    """``path`` opened by ``opener``; a refusal (outside the plate) or an OS error is a
    TileError naming the file. (The handle may be unnamed: tifffile is given the name.)"""
    try:
        return opener(Path(path))
    except OSError as exc:
        raise TileError(f"{path}: cannot be opened ({exc})") from exc


def tile_header(path: str, opener: Opener = open_as_named) -> TileHeader:
    """Shape and dtype of a 2-D TIFF tile from its header, without reading pixels."""
    with _opened(path, opener) as handle:
        try:
            with tifffile.TiffFile(handle, name=Path(path).name) as tif:
                page = tif.pages.first
                shape, dtype = tuple(page.shape), str(page.dtype)
        except Exception as exc:  # tifffile raises many types for damaged files
            raise TileError(f"{path}: not a readable TIFF ({exc})") from exc
    if len(shape) != 2:
        raise TileError(f"{path}: tile has shape {shape}; expected one 2-D grey plane")
    return TileHeader((int(shape[0]), int(shape[1])), dtype)


def read_tile(path: str, header: TileHeader, opener: Opener = open_as_named) -> np.ndarray:
    """The pixels of a tile, which must match ``header`` (shape and dtype)."""
    with _opened(path, opener) as handle:
        try:
            pixels = tifffile.imread(handle, name=Path(path).name)
        except Exception as exc:
            raise TileError(
                f"{path}: cannot read pixels, truncated or corrupt TIFF ({exc})"
            ) from exc
    if pixels.shape != header.shape or str(pixels.dtype) != header.dtype:
        raise TileError(
            f"{path}: tile is {pixels.shape} {pixels.dtype}, expected {header.shape} {header.dtype}"
        )
    return pixels


def well_memory_mb(header: TileHeader, planes: int, grid: tuple[int, int], step: float) -> float:
    """Peak memory of stitching one well: its tiles, plus a float32 mosaic and weight map
    and the output mosaic, all for every plane (channel x z)."""
    height, width = header.shape
    itemsize = np.dtype(header.dtype).itemsize
    tiles = grid[0] * grid[1] * planes * height * width * itemsize
    mosaic = ((grid[0] - 1) * step + height) * ((grid[1] - 1) * step + width)
    return (tiles + mosaic * planes * (4 + 4 + itemsize)) / 2**20


def reference_header(headers: dict[str, TileHeader | TileError]) -> TileHeader:
    """The plate's tile shape and dtype: the most common among its readable tiles."""
    readable = [h for h in headers.values() if isinstance(h, TileHeader)]
    if not readable:
        raise TileError(f"none of the {len(headers)} tiles is a readable TIFF")
    return TileHeader(*pd.Series([(h.shape, h.dtype) for h in readable]).mode().iloc[0])


def validate_wells(
    tiles: pd.DataFrame,
    grid: tuple[int, int],
    headers: dict[str, TileHeader | TileError],
    reference: TileHeader,
    step: float,
    worker_memory_mb: float,
) -> pd.DataFrame:
    """One row per well: status ``ok`` or ``invalid`` with the reason (missing tiles per
    site and channel, unreadable tiles, tiles unlike ``reference``, memory over the worker
    limit). ``headers`` maps each tile path to its header or the error reading it."""
    channels = sorted(tiles["channel"].unique())
    zs = sorted(tiles["z"].unique())
    sites = range(1, grid[0] * grid[1] + 1)
    rows = []
    for well, group in tiles.groupby("well", sort=True):
        present = set(zip(group["site"], group["channel"], group["z"], strict=True))
        missing = [
            f"s{s} ch{c} z{z}"
            for s in sites
            for c in channels
            for z in zs
            if (s, c, z) not in present
        ]
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} tile(s): {', '.join(missing[:6])}")
        for path in group["path"]:
            header = headers[path]
            if isinstance(header, TileError):
                problems.append(str(header))
            elif header != reference:
                problems.append(
                    f"{path}: tile is {header.shape} {header.dtype}, the plate's tiles are "
                    f"{reference.shape} {reference.dtype}"
                )
        memory = well_memory_mb(reference, len(channels) * len(zs), grid, step)
        if memory > worker_memory_mb:
            problems.append(
                f"stitching needs ~{memory:.0f} MB, over the worker limit of "
                f"{worker_memory_mb:.0f} MB (raise worker_memory_mb or use fewer workers)"
            )
        rows.append(
            {
                "well": well,
                "tiles": len(group),
                "expected_tiles": len(sites) * len(channels) * len(zs),
                "missing_tiles": len(missing),
                "memory_mb": round(memory, 1),
                "status": "invalid" if problems else "ok",
                "error": "; ".join(problems[:3]),
            }
        )
    return pd.DataFrame(rows)
