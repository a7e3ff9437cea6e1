"""Illumination correction (flat field) and background subtraction of fluorescence planes.

``flat_field`` estimates the microscope's illumination profile from the background of many
planes (every site of one channel and z plane of a plate). Objects are kept out twice: the
background of a block of pixels is a low percentile of its pixels (right while objects cover
under 3/4 of it), and the profile takes a low percentile of each block's background over the
planes (right while objects lie there in under 9/10 of the planes), so bright nuclei do not
imprint on it. A cubic surface plus a Gaussian-smoothed rest makes the profile smooth.
``subtract_background`` removes a smooth background per plane (white top-hat or rolling
ball).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage
from skimage.morphology import disk, white_tophat
from skimage.restoration import rolling_ball

from imaging_assets.science.contract import step_contract

BLOCK_PERCENTILE = 25  # of a block's pixels: its background while objects cover under 3/4
MIN_PROFILE = 0.05  # relative illumination below this is a failed estimate, not light
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
    """A smooth profile through ``values`` (2-D on the grid ``ys`` x ``xs``): the
    coefficients of its least-squares cubic surface (vignetting times a ramp is cubic, and a
    fitted surface stays right up to the edges, where a Gaussian would flatten it) and the
    rest, smoothed by a Gaussian of ``sigma`` grid steps."""
    terms = np.stack([np.outer(ys**i, xs**j).ravel() for i, j in POWERS], axis=1)
    coefficients = np.linalg.lstsq(terms, values.ravel(), rcond=None)[0]
    rest = values - (terms @ coefficients).reshape(values.shape)
    return coefficients, ndimage.gaussian_filter(rest, sigma)


def illumination_profile(
    stack: np.ndarray, sigma_px: float, offset: float, percentile: float
) -> np.ndarray:
    """(H, W) float32 relative illumination (mean 1) of a stack of planes (N, H, W) of one
    channel: the ``percentile`` over the planes of the background of blocks of about a
    quarter of ``sigma_px`` (each plane scaled by its own background level first), smoothed
    (``fit_profile``) and brought back to full size. All ones for blank planes."""
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
    if not profile.mean() > 0:  # blank planes: no light to measure
        return np.ones((height, width), np.float32)
    return np.clip(profile / profile.mean(), MIN_PROFILE, None).astype(np.float32)


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
    not fit in); ``rolling_ball``: less the surface a ball of ``radius_px`` rolled under the
    intensity landscape reaches (scikit-image's ball has that radius in intensity units too,
    so it follows only backgrounds changing by well under one unit per pixel). Choose the
    radius above the largest object's radius."""
    planes = np.asarray(stack).astype(np.float32)
    if method == "tophat":
        footprint = disk(max(1, round(radius_px)), decomposition="sequence")
        return np.stack([white_tophat(plane, footprint) for plane in planes])
    if method == "rolling_ball":
        return np.stack([plane - rolling_ball(plane, radius=radius_px) for plane in planes])
    raise ValueError(f"method must be 'tophat' or 'rolling_ball', not {method!r}")
