"""Tile positions of one well: pairwise phase correlation of neighbours, then a global solve.

Units: pixels; ``y`` down, ``x`` right; a position is a tile's top-left corner in the well
mosaic (the smallest position is 0 on each axis).

1. Each pair of grid neighbours is correlated on the region the stage says they share
   (nominal offset), after a high-pass (background subtraction: uneven illumination would
   otherwise dominate the peak) and a Hann window. Phase correlation with DFT upsampling gives
   the sub-pixel residual shift; the normalised cross-correlation (NCC) of the two tiles at
   the resulting offset is the pair's quality.
2. Global solve: weighted least squares over all pair offsets (weight = quality), so every
   tile's position agrees with all its neighbours at once rather than along one path. Pairs
   below ``min_quality`` (an empty overlap, a wrong peak) fall back to the stage offset with
   a tiny weight: they only anchor tiles that no good pair reaches.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.registration import phase_cross_correlation

FALLBACK_WEIGHT = 1e-3


@dataclass(frozen=True)
class RegistrationParams:
    """``max_shift``: largest allowed deviation from the stage offset (pixels);
    ``min_quality``: NCC below which a pair is not trusted; ``upsample``: sub-pixel
    precision is 1/upsample; ``highpass_sigma``: the background is a Gaussian blur of this
    sigma (pixels), subtracted before correlating."""

    max_shift: float = 30.0
    min_quality: float = 0.3
    upsample: int = 20
    highpass_sigma: float = 8.0


@dataclass(frozen=True)
class PairOffset:
    """Offset of tile ``b`` relative to tile ``a`` (position b - position a)."""

    a: int
    b: int
    dy: float
    dx: float
    quality: float
    trusted: bool


def _overlap(shape: tuple[int, int], dy: int, dx: int) -> tuple[slice, slice, slice, slice]:
    """Slices of tile a and tile b that show the same area when b sits at (dy, dx) from a."""
    height, width = shape
    ay = slice(max(0, dy), min(height, height + dy))
    ax = slice(max(0, dx), min(width, width + dx))
    by = slice(max(0, -dy), min(height, height - dy))
    bx = slice(max(0, -dx), min(width, width - dx))
    return ay, ax, by, bx


def highpass_region(tile: np.ndarray, rows: slice, cols: slice, sigma: float) -> np.ndarray:
    """``tile[rows, cols]`` minus its background, a blur of width ``sigma`` (two box filters,
    as smooth as a Gaussian for this purpose and several times cheaper), computed with up to
    3 sigma of the surrounding tile so the region's edges are filtered like its middle."""
    margin = int(np.ceil(3 * sigma))
    top, left = max(0, rows.start - margin), max(0, cols.start - margin)
    pixels = tile[top : rows.stop + margin, left : cols.stop + margin].astype(np.float32)
    box = round(np.sqrt(6 * sigma**2 + 1))  # two box passes: the variance of a Gaussian(sigma)
    background = ndimage.uniform_filter(ndimage.uniform_filter(pixels, box), box)
    filtered = pixels - background
    return filtered[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equally shaped arrays (0 when either is flat)."""
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def pair_offset(
    a: np.ndarray, b: np.ndarray, nominal: tuple[float, float], params: RegistrationParams
) -> tuple[float, float, float]:
    """(dy, dx, quality) of tile ``b`` relative to tile ``a``, near the stage offset
    ``nominal``. Only the shared region is filtered and correlated."""
    ny, nx = round(nominal[0]), round(nominal[1])
    ay, ax, by, bx = _overlap(a.shape, ny, nx)
    crop_a = highpass_region(a, ay, ax, params.highpass_sigma)
    crop_b = highpass_region(b, by, bx, params.highpass_sigma)
    if min(crop_a.shape) < 8:
        return float(nominal[0]), float(nominal[1]), 0.0
    window = np.outer(np.hanning(crop_a.shape[0]), np.hanning(crop_a.shape[1]))
    with warnings.catch_warnings():  # a blank crop warns; its NCC of 0 marks it untrusted
        warnings.simplefilter("ignore", UserWarning)
        shift, _, _ = phase_cross_correlation(
            crop_a * window, crop_b * window, upsample_factor=params.upsample
        )
    residual_y, residual_x = float(shift[0]), float(shift[1])
    if max(abs(residual_y), abs(residual_x)) > params.max_shift:
        return float(nominal[0]), float(nominal[1]), 0.0
    # quality: the two filtered crops compared where they overlap at the found offset
    cy, cx, dy_, dx_ = _overlap(crop_a.shape, round(residual_y), round(residual_x))
    return ny + residual_y, nx + residual_x, ncc(crop_a[cy, cx], crop_b[dy_, dx_])


def neighbour_pairs(grid: pd.DataFrame) -> list[tuple[int, int, str]]:
    """(index a, index b, 'right'|'down') for grid neighbours; ``grid`` has grid_row,
    grid_col (one row per tile, index = position in the tile list)."""
    cells = zip(grid["grid_row"], grid["grid_col"], strict=True)
    where = {(row, col): index for index, (row, col) in enumerate(cells)}
    pairs = []
    for (row, col), index in where.items():
        if (row, col + 1) in where:
            pairs.append((index, where[(row, col + 1)], "right"))
        if (row + 1, col) in where:
            pairs.append((index, where[(row + 1, col)], "down"))
    return pairs


def solve_positions(count: int, pairs: list[PairOffset]) -> np.ndarray:
    """(count, 2) positions (y, x) from pair offsets by weighted least squares, tile 0 fixed
    at the origin, then shifted so the smallest coordinate is 0."""
    if count == 1:
        return np.zeros((1, 2))
    design = np.zeros((len(pairs) + 1, count))
    weights = np.empty(len(pairs) + 1)
    targets = np.zeros((len(pairs) + 1, 2))
    for k, pair in enumerate(pairs):
        design[k, pair.b], design[k, pair.a] = 1.0, -1.0
        targets[k] = (pair.dy, pair.dx)
        weights[k] = pair.quality if pair.trusted else FALLBACK_WEIGHT
    design[-1, 0], weights[-1] = 1.0, 1.0  # tile 0 at (0, 0)
    root = np.sqrt(weights)[:, None]
    positions, *_ = np.linalg.lstsq(design * root, targets * root, rcond=None)
    return positions - positions.min(axis=0)


def register_tiles(
    tiles: list[np.ndarray],
    grid: pd.DataFrame,
    step: tuple[float, float],
    params: RegistrationParams,
) -> tuple[pd.DataFrame, list[PairOffset]]:
    """Positions of ``tiles`` (same order as ``grid`` rows) given the stage step (dy, dx)
    between neighbours. Returns ``grid`` with x, y, quality (best pair NCC of each tile)
    and the pair offsets."""
    pairs = []
    for a, b, direction in neighbour_pairs(grid):
        nominal = (0.0, step[1]) if direction == "right" else (step[0], 0.0)
        dy, dx, quality = pair_offset(tiles[a], tiles[b], nominal, params)
        trusted = quality >= params.min_quality
        if not trusted:
            dy, dx = nominal
        pairs.append(PairOffset(a, b, dy, dx, quality, trusted))
    positions = solve_positions(len(tiles), pairs)
    quality = np.zeros(len(tiles))
    for pair in pairs:
        quality[pair.a] = max(quality[pair.a], pair.quality)
        quality[pair.b] = max(quality[pair.b], pair.quality)
    result = grid.copy()
    result["y"], result["x"], result["quality"] = positions[:, 0], positions[:, 1], quality
    return result, pairs


def position_errors(found: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """well, site, error_px: Euclidean error (pixels) of each tile found in ``truth``
    (columns well, site, x, y), after removing each well's mean translation (a mosaic's
    origin is arbitrary)."""
    merged = found.merge(truth, on=["well", "site"], suffixes=("", "_true"))
    for axis in ("x", "y"):
        difference = merged[axis] - merged[f"{axis}_true"]
        merged[f"d{axis}"] = difference - difference.groupby(merged["well"]).transform("mean")
    return merged[["well", "site"]].assign(error_px=np.hypot(merged["dx"], merged["dy"]))
