"""Blending tiles into one well mosaic at their registered positions."""

from __future__ import annotations

import numpy as np


def feather_weights(shape: tuple[int, int]) -> np.ndarray:
    """Weight of each tile pixel: its distance to the nearest tile edge (1 at the edge), so
    overlaps fade linearly from one tile into the next instead of showing a seam."""
    height, width = shape
    ramp_y = np.minimum(np.arange(1, height + 1), np.arange(height, 0, -1))
    ramp_x = np.minimum(np.arange(1, width + 1), np.arange(width, 0, -1))
    return np.minimum.outer(ramp_y, ramp_x).astype(np.float32)


def mosaic_shape(positions: np.ndarray, tile_shape: tuple[int, int]) -> tuple[int, int]:
    corners = np.rint(positions).astype(int).max(axis=0)
    return int(corners[0]) + tile_shape[0], int(corners[1]) + tile_shape[1]


def nominal_shape(
    grid: tuple[int, int], step: tuple[float, float], tile_shape: tuple[int, int]
) -> tuple[int, int]:
    """Mosaic size the stage intends: (grid - 1) steps plus one tile, per axis."""
    return (
        round((grid[0] - 1) * step[0]) + tile_shape[0],
        round((grid[1] - 1) * step[1]) + tile_shape[1],
    )


def common_well_shape(
    written: list[tuple[int, int]],
    positions: list[np.ndarray],
    tile_shape: tuple[int, int],
    grid: tuple[int, int],
    stated_step: tuple[float, float],
) -> tuple[int, int]:
    """One mosaic size (pixels) for every well of a plate, so wells line up in a viewer: that
    of the wells already ``written``, else the median extent of the wells' registered tile
    ``positions`` (the stage's intent, whatever the overlap really is), else the size the
    stated step gives."""
    if written:
        return written[0]
    if positions:
        extents = np.array([mosaic_shape(p, tile_shape) for p in positions])
        return int(np.median(extents[:, 0])), int(np.median(extents[:, 1]))
    return nominal_shape(grid, stated_step, tile_shape)


def stitch(
    tiles: list[np.ndarray], positions: np.ndarray, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Mosaic of ``tiles`` (each (..., H, W), e.g. channel x z planes) placed at
    ``positions`` ((n, 2) y, x pixels, rounded to whole pixels) with feathered blending.
    Pixels no tile covers are 0. With ``shape`` the mosaic is cut or zero-padded at the
    bottom and right to exactly that size (every well of a plate the same size, as plate
    viewers expect). The result keeps the tiles' dtype."""
    tile_shape = tiles[0].shape[-2:]
    height, width = mosaic_shape(positions, tile_shape)
    if shape is not None:
        height, width = max(height, shape[0]), max(width, shape[1])
    weights = feather_weights(tile_shape)
    total = np.zeros((*tiles[0].shape[:-2], height, width), np.float32)
    weight_sum = np.zeros((height, width), np.float32)
    for tile, (y, x) in zip(tiles, np.rint(positions).astype(int), strict=True):
        window = (..., slice(y, y + tile_shape[0]), slice(x, x + tile_shape[1]))
        total[window] += tile * weights
        weight_sum[window[1:]] += weights
    np.divide(total, weight_sum, out=total, where=weight_sum > 0)
    if np.issubdtype(tiles[0].dtype, np.integer):
        limits = np.iinfo(tiles[0].dtype)
        np.rint(total, out=total)
        np.clip(total, limits.min, limits.max, out=total)
    if shape is not None:
        total = total[..., : shape[0], : shape[1]]
    return total.astype(tiles[0].dtype)
