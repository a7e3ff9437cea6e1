"""Illumination correction (flat field) and background subtraction of fluorescence planes.

``flat_field`` estimates the microscope's illumination profile from the background of many
planes (every site of one channel and z plane of a plate): where a plane shows a nucleus is
left out, so bright objects do not imprint on the profile, and a low per-pixel percentile of
what is left over the planes is smoothed into the profile. ``subtract_background`` removes a
smooth background per plane (white top-hat or rolling ball).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage
from skimage.morphology import disk, white_tophat
from skimage.restoration import rolling_ball

from imaging_assets.science.contract import step_contract

BLOCK_PERCENTILE = 25  # of a block's pixels: its background while objects cover under 3/4
POWERS = [(i, j) for i in range(4) for j in range(4 - i)]  # y^i x^j of a cubic surface


def block_background(plane: np.ndarray, factor: int) -> np.ndarray:
    """``BLOCK_PERCENTILE`` of the pixels of each ``factor`` x ``factor`` block of ``plane``,
    lightly smoothed first against shot noise (a partial block at the bottom or right edge is
    dropped)."""
    rows, cols = plane.shape[0] // factor, plane.shape[1] // factor
    smooth = ndimage.gaussian_filter(plane.astype(np.float32), 1.5)[
        : rows * factor, : cols * factor
    ]
    blocks = smooth.reshape(rows, factor, cols, factor).transpose(0, 2, 1, 3)
    return np.percentile(blocks.reshape(rows, cols, -1), BLOCK_PERCENTILE, axis=-1)


def centres(count: int, factor: int, size: int) -> np.ndarray:
    """Coordinates (-1 at the first pixel, 1 at the last of ``size``) of the centres of
    ``count`` blocks of ``factor`` pixels."""
    return (np.arange(count) * factor + (factor - 1) / 2) / max(size - 1, 1) * 2 - 1


def polynomial_surface(coefficients: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The cubic surface sum c * y^i * x^j on the grid ``ys`` x ``xs``."""
    surface = np.zeros((ys.size, xs.size))
    for coefficient, (i, j) in zip(coefficients, POWERS, strict=True):
        surface += coefficient * np.outer(ys**i, xs**j)
    return surface


def fit_profile(
    values: np.ndarray, ys: np.ndarray, xs: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth profile through ``values`` (2-D on the grid ``ys`` x ``xs``, NaN where
    unknown): the coefficients of its least-squares cubic surface (vignetting times a ramp
    is cubic; a fitted surface stays right up to the edges, where a Gaussian would flatten
    it) and the rest smoothed by a Gaussian of ``sigma`` grid steps, filled where unknown
    (normalised convolution)."""
    terms = np.stack([np.outer(ys**i, xs**j).ravel() for i, j in POWERS], axis=1)
    known = np.isfinite(values)
    coefficients = np.linalg.lstsq(terms[known.ravel()], values[known], rcond=None)[0]
    rest = np.where(known, values - (terms @ coefficients).reshape(values.shape), 0)
    weight = ndimage.gaussian_filter(known.astype(np.float64), sigma)
    return coefficients, ndimage.gaussian_filter(rest, sigma) / np.maximum(weight, 1e-6)


def illumination_profile(
    stack: np.ndarray, sigma_px: float, offset: float, percentile: float
) -> np.ndarray:
    """(H, W) float32 relative illumination (mean 1) of a stack of planes (N, H, W) of one
    channel, from the background of blocks of about a quarter of ``sigma_px``: each plane is
    scaled by its own background level, its blocks that still show an object
    (``OBJECT_CONTRAST`` above a first, median-based profile) are left out, and the
    ``percentile`` of the rest over the planes is smoothed (``fit_profile``)."""
    height, width = stack.shape[1:]
    factor = max(1, min(round(sigma_px / 4), height // 4, width // 4))
    small = np.stack([block_background(plane, factor) for plane in stack]) - offset
    small /= np.maximum(np.median(small, axis=(1, 2), keepdims=True), 1e-6)
    ys = centres(small.shape[1], factor, height)
    xs = centres(small.shape[2], factor, width)
    estimate = np.percentile(small, percentile, axis=0)
    coefficients, rest = fit_profile(estimate, ys, xs, sigma_px / factor)
    rest = ndimage.zoom(rest, factor, order=1, mode="nearest", grid_mode=True)
    rest = np.pad(rest, ((0, height - rest.shape[0]), (0, width - rest.shape[1])), mode="edge")
    surface = polynomial_surface(
        coefficients, np.linspace(-1, 1, height), np.linspace(-1, 1, width)
    )
    profile = surface + rest
    return (profile / profile.mean()).astype(np.float32)


@step_contract(scope="plate", variable_components=("site",))
def flat_field(
    stack: np.ndarray, sigma_px: float = 50.0, offset: float = 0.0, percentile: float = 10.0
) -> np.ndarray:
    """``(stack - offset) / profile`` as float32 (N, H, W): each plane corrected for the
    uneven illumination estimated from all the planes (``illumination_profile``; the more
    planes, the better: every site of every well of a plate, one channel and z plane).

    ``sigma_px``: smoothness of the profile beyond its cubic trend (pixels; illumination
    varies slowly across a field of view); ``offset``: the camera's dark level (intensity
    units), which is not illuminated and must not be divided (0 when unknown or already
    subtracted); ``percentile``: of each pixel's background over the planes (low, because
    haze and dim objects only add light)."""
    stack = np.asarray(stack)
    if stack.ndim != 3 or not stack.shape[0]:
        raise ValueError(f"expected a stack of planes (N, H, W), not an array of {stack.shape}")
    profile = illumination_profile(stack, sigma_px, offset, percentile)
    return ((stack.astype(np.float32) - np.float32(offset)) / profile).astype(np.float32)


@step_contract(variable_components=("site",))
def subtract_background(
    stack: np.ndarray,
    method: Literal["tophat", "rolling_ball"] = "tophat",
    radius_px: float = 25.0,
) -> np.ndarray:
    """Each plane of ``stack`` (N, H, W) less its smooth background, as float32.

    ``tophat``: white top-hat with a disk of ``radius_px`` pixels (keeps what the disk does
    not fit in); ``rolling_ball``: less the surface a ball of ``radius_px`` pixels rolled
    under the intensity landscape reaches. Choose the radius above the largest object's
    radius."""
    planes = np.asarray(stack).astype(np.float32)
    if method == "tophat":
        footprint = disk(max(1, round(radius_px)), decomposition="sequence")
        return np.stack([white_tophat(plane, footprint) for plane in planes])
    if method == "rolling_ball":
        return np.stack([plane - rolling_ball(plane, radius=radius_px) for plane in planes])
    raise ValueError(f"method must be 'tophat' or 'rolling_ball', not {method!r}")
