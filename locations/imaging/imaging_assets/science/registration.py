"""Tile positions of one well: NCC of neighbouring tiles, then a global solve.

Units: pixels; ``y`` down, ``x`` right; a position is a tile's top-left corner in the well
mosaic (the smallest position is 0 on each axis).

0. Overlap (stage step) and stage repeatability estimated from the data, as MIST does: every
   pair of a sample of wells is compared over a wide window (overlaps 2-30 %, perpendicular
   shifts up to a quarter tile): the placement of the two high-passed edge strips with the
   highest overlap-normalised cross-correlation (NCC, ``wide_pair_offset``). The plate-wide
   consensus is the median of the trusted pairs; the repeatability their spread
   (``consensus_step``). A flat field (``flat_field``) removes the illumination shared by the
   tiles before they are registered.
1. Each pair of grid neighbours is compared near the offset the step says, after a
   high-pass (background subtraction: uneven illumination would otherwise dominate): the NCC
   of every whole-pixel placement within ``max_shift`` (``ncc_window``: overlap-normalised,
   no window function: a window fixed while the content moves pulls the estimate towards the
   offset the crops were cut at), the best refined to sub-pixel by a parabola through the
   peak. The peak NCC is the pair's quality. Whole-pixel offsets come out whole.
2. Global solve: weighted least squares over all pair offsets (weight = quality), so every
   tile's position agrees with all its neighbours at once rather than along one path. Pairs
   below ``min_quality`` (an empty overlap, a wrong peak) fall back to the step with a tiny
   weight: they only anchor tiles that no good pair reaches. A trusted pair that disagrees
   with the solve by more than ``OUTLIER_PX`` (or 3 x the median disagreement) is a wrong
   peak: the worst is dropped and the solve repeated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import fft as sp_fft
from scipy import ndimage

FALLBACK_WEIGHT = 1e-3
MIN_OVERLAP_PX = 4  # narrowest overlap (pixels) a pair is compared on
OUTLIER_PX = 1.0  # trusted pairs disagreeing with the solve by more are dropped, worst first


@dataclass(frozen=True)
class RegistrationParams:
    """``max_shift``: largest allowed deviation from the stage offset (pixels);
    ``min_quality``: NCC below which a pair is not trusted; ``highpass_sigma``: the
    background is a Gaussian blur of this sigma (pixels), subtracted before correlating;
    ``min_overlap``..``max_overlap``: the overlaps (fractions of a tile) the wide search
    considers when the step is estimated from the data."""

    max_shift: float = 30.0
    min_quality: float = 0.3
    highpass_sigma: float = 8.0
    min_overlap: float = 0.02  # the wide search's range of overlaps (fractions of a tile)
    max_overlap: float = 0.30


@dataclass(frozen=True)
class StepEstimate:
    """Consensus stage step between neighbours (pixels: ``right`` = (dy, dx) of the right
    neighbour, ``down`` = (dy, dx) of the one below), the stage repeatability (largest
    deviation of a trusted pair from the consensus, pixels) and the pairs it rests on."""

    right: tuple[float, float]
    down: tuple[float, float]
    repeatability: float
    pairs: int

    def search_reach(self) -> int:
        """How far (pixels) from the step a pair is searched: twice the repeatability (two
        tiles' stage errors add up) plus 2."""
        return math.ceil(2 * self.repeatability + 2)

    def overlap(self, tile_shape: tuple[int, int]) -> tuple[float, float]:
        """Overlap fractions (vertical, horizontal) the step means for this tile size."""
        return 1 - self.down[0] / tile_shape[0], 1 - self.right[1] / tile_shape[1]


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
    """(dy, dx, quality) of tile ``b`` relative to tile ``a`` within ``max_shift`` of the
    offset ``nominal`` (a ``right`` neighbour when ``nominal``'s dx exceeds its dy, else a
    ``down`` one): the whole-pixel placement of highest NCC (``ncc_window``) of the
    high-passed regions that may overlap, refined to sub-pixel by a parabola through the
    peak and its neighbours on each axis. Quality is the peak NCC; 0 (and ``nominal``)
    when the overlap is too small or the peak lies on the search window's edge."""
    if abs(nominal[0]) > abs(nominal[1]):  # a down neighbour: the right case, transposed
        dx, dy, quality = pair_offset(a.T, b.T, (nominal[1], nominal[0]), params)
        return dy, dx, quality
    height, width = a.shape
    ny, nx = round(nominal[0]), round(nominal[1])
    reach = int(np.ceil(params.max_shift))
    first = max(0, nx - reach)  # leftmost column of a that b may cover
    shared = width - first
    if width - nx < MIN_OVERLAP_PX or shared <= 0:
        return float(nominal[0]), float(nominal[1]), 0.0
    every = slice(0, height)
    region_a = highpass_region(a, every, slice(first, width), params.highpass_sigma)
    region_b = highpass_region(b, every, slice(0, min(width, shared)), params.highpass_sigma)
    shifts_y = np.arange(ny - reach - 1, ny + reach + 2)
    shifts_x = np.arange(nx - reach - 1, min(nx + reach + 2, width - MIN_OVERLAP_PX + 1)) - first
    if len(shifts_x) < 3:  # no room to search: the overlap is too narrow
        return float(nominal[0]), float(nominal[1]), 0.0
    window = ncc_window(region_a, region_b, shifts_y, shifts_x)
    inner = window[1:-1, 1:-1]
    row, col = (int(i) + 1 for i in np.unravel_index(int(np.argmax(inner)), inner.shape))
    if row in (1, window.shape[0] - 2) or col in (1, window.shape[1] - 2):
        return float(nominal[0]), float(nominal[1]), 0.0  # the best lies beyond max_shift

    def vertex(minus: float, centre: float, plus: float) -> float:
        curvature = minus - 2 * centre + plus
        return float(np.clip(0.5 * (minus - plus) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0

    sub_y = vertex(window[row - 1, col], window[row, col], window[row + 1, col])
    sub_x = vertex(window[row, col - 1], window[row, col], window[row, col + 1])
    dy, dx = shifts_y[row] + sub_y, shifts_x[col] + first + sub_x
    return float(dy), float(dx), max(float(window[row, col]), 0.0)


def _integral(image: np.ndarray) -> np.ndarray:
    """Summed-area table with a leading zero row and column (float64)."""
    table = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
    np.cumsum(np.cumsum(image, axis=0, dtype=np.float64), axis=1, out=table[1:, 1:])
    return table


def _box(table: np.ndarray, top, bottom, left, right) -> np.ndarray:
    """Sums of the rectangles [top, bottom) x [left, right) from a summed-area table."""
    return table[bottom, right] - table[top, right] - table[bottom, left] + table[top, left]


def ncc_window(a: np.ndarray, b: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """NCC of ``a`` and ``b`` over their overlap when ``b``'s top-left corner sits at (y, x)
    in ``a``'s frame, for every y of ``ys`` and x of ``xs`` (a (len(ys), len(xs)) array; 0
    where they do not overlap or either side is flat there). The products come from one FFT
    correlation padded just enough for these placements (no wrap-around), the sums of each
    overlap from summed-area tables: no window, every placement judged on its own overlap."""
    (ha, wa), (hb, wb) = a.shape, b.shape
    size = (
        sp_fft.next_fast_len(max(ha, hb) + int(np.abs(ys).max()) + 1, real=True),
        sp_fft.next_fast_len(max(wa, wb) + int(np.abs(xs).max()) + 1, real=True),
    )
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    spectrum = sp_fft.rfft2(a64, size) * np.conj(sp_fft.rfft2(b64, size))
    cross = sp_fft.irfft2(spectrum, size)[np.ix_(ys % size[0], xs % size[1])]
    y, x = ys[:, None], xs[None, :]
    top, bottom = np.clip(y, 0, ha), np.clip(y + hb, 0, ha)  # the overlap, in a's frame
    left, right = np.clip(x, 0, wa), np.clip(x + wb, 0, wa)
    count = np.maximum((bottom - top) * (right - left), 0).astype(np.float64)
    sums_a, squares_a = _integral(a64), _integral(a64 * a64)
    sums_b, squares_b = _integral(b64), _integral(b64 * b64)
    corners = (top, bottom, left, right)
    in_b = (top - y, bottom - y, left - x, right - x)  # the same overlap, in b's frame
    safe = np.maximum(count, 1.0)
    sum_a, sum_b = _box(sums_a, *corners), _box(sums_b, *in_b)
    var_a = _box(squares_a, *corners) - sum_a**2 / safe
    var_b = _box(squares_b, *in_b) - sum_b**2 / safe
    denominator = np.sqrt(np.maximum(var_a * var_b, 0.0))
    valid = (count > 0) & (denominator > 1e-9 * max(float(denominator.max()), 1e-300))
    return np.where(valid, (cross - sum_a * sum_b / safe) / np.where(valid, denominator, 1), 0.0)


def wide_pair_offset(
    a: np.ndarray, b: np.ndarray, direction: str, params: RegistrationParams
) -> tuple[int, int, float]:
    """(dy, dx, NCC) of tile ``b`` (the ``right`` or ``down`` neighbour of ``a``) found
    anywhere in the overlap range ``min_overlap``..``max_overlap`` (and a perpendicular
    shift up to a quarter tile), to the whole pixel: the placement of the two high-passed
    edge strips with the highest NCC over their overlap."""
    if direction == "down":
        dx, dy, quality = wide_pair_offset(a.T, b.T, "right", params)
        return dy, dx, quality
    height, width = a.shape
    strip = min(width, int(np.ceil(params.max_overlap * width)))
    every = slice(0, height)
    strip_a = highpass_region(a, every, slice(width - strip, width), params.highpass_sigma)
    strip_b = highpass_region(b, every, slice(0, strip), params.highpass_sigma)
    least = max(8, int(np.floor(params.min_overlap * width)))
    reach = height // 4
    shifts_y = np.arange(-reach, reach + 1)
    shifts_x = np.arange(0, strip - least + 1)  # b's left edge inside a's strip
    window = ncc_window(strip_a, strip_b, shifts_y, shifts_x)
    row, col = np.unravel_index(int(np.argmax(window)), window.shape)
    quality = float(window[row, col])
    return int(shifts_y[row]), int(width - strip + shifts_x[col]), max(quality, 0.0)


def consensus_step(
    offsets: list[tuple[str, float, float, float]], min_quality: float
) -> StepEstimate | None:
    """The step of each direction as the median of the trusted pairs (``direction``, dy, dx,
    NCC), and the repeatability as the largest deviation from it once pairs beyond 1.5
    inter-quartile ranges are set aside (MIST). None when a direction has no trusted pair."""
    table = pd.DataFrame(offsets, columns=["direction", "dy", "dx", "quality"])
    trusted = table[table["quality"] >= min_quality]
    medians, deviations = {}, []
    for direction in ("right", "down"):
        rows = trusted[trusted["direction"] == direction]
        if rows.empty:
            return None
        medians[direction] = (float(rows["dy"].median()), float(rows["dx"].median()))
        for axis, centre in zip(("dy", "dx"), medians[direction], strict=True):
            values = rows[axis].to_numpy(dtype=float)
            q1, q3 = np.percentile(values, [25, 75])
            spread = 1.5 * (q3 - q1)
            inliers = values[(values >= q1 - spread) & (values <= q3 + spread)]
            deviations.append(float(np.abs(inliers - centre).max()))
    return StepEstimate(medians["right"], medians["down"], max(deviations), len(trusted))


def flat_field(images: list[np.ndarray], smoothing: float = 1 / 8) -> np.ndarray:
    """Illumination shared by ``images`` (tiles of one plate, or per-well medians of them):
    the per-pixel median, smoothed by a Gaussian of ``smoothing`` x the tile size (content
    averages out, the illumination profile stays), scaled to mean 1."""
    median = np.median(np.stack([i.astype(np.float32) for i in images]), axis=0)
    sigma = smoothing * min(median.shape)
    profile = ndimage.gaussian_filter(median, sigma, mode="nearest")
    profile = np.maximum(profile, 1e-6 * max(float(profile.max()), 1e-12))
    return (profile / profile.mean()).astype(np.float32)


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
    step: tuple[float, float] | StepEstimate,
    params: RegistrationParams,
) -> tuple[pd.DataFrame, list[PairOffset]]:
    """Positions of ``tiles`` (same order as ``grid`` rows) given the stage step between
    neighbours: (dy, dx) of a regular grid, or an estimate (``consensus_step``). Returns
    ``grid`` with x, y, quality (best pair NCC of each tile) and the pair offsets."""
    if not isinstance(step, StepEstimate):
        step = StepEstimate((0.0, step[1]), (step[0], 0.0), params.max_shift, 0)
    pairs, nominals = [], []
    for a, b, direction in neighbour_pairs(grid):
        nominal = step.right if direction == "right" else step.down
        nominals.append(nominal)
        dy, dx, quality = pair_offset(tiles[a], tiles[b], nominal, params)
        trusted = quality >= params.min_quality
        if not trusted:
            dy, dx = nominal
        pairs.append(PairOffset(a, b, dy, dx, quality, trusted))
    positions = solve_positions(len(tiles), pairs)
    while True:  # a wrong peak (an empty overlap) disagrees with the rest: drop the worst
        residuals = [
            float(np.hypot(*(positions[p.b] - positions[p.a] - (p.dy, p.dx)))) if p.trusted else 0.0
            for p in pairs
        ]
        limit = max(OUTLIER_PX, 3 * float(np.median([r for r in residuals if r] or [0.0])))
        worst = int(np.argmax(residuals))
        if residuals[worst] <= limit:
            break
        nominal = nominals[worst]
        pairs[worst] = replace(pairs[worst], dy=nominal[0], dx=nominal[1], trusted=False)
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
