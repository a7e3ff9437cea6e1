"""Classical nuclei segmentation of fluorescence images (a nuclear stain such as DAPI).

Per plane: smooth out the shot noise, remove the background with a white top-hat (haze and
uneven illumination wider than a nucleus), threshold (Li's minimum cross-entropy, which keeps
dim nuclei that Otsu's method loses to bright mitotic ones), fill holes (nucleoli), split
touching nuclei by a watershed of the distance transform from its peaks, drop objects no
brighter than noise, then trim each nucleus to where its intensity exceeds a fraction of its
own peak, so dim and bright nuclei get their outline at the same relative level. What the
trimming cuts off a merged object and is still nucleus-sized (a dim nucleus beside a bright
one) is segmented again on its own. Nuclei cut by the tile edge are kept: they are real
nuclei (stitching or a count over overlapping tiles decides about them, not this step).

The defaults were chosen on synthetic scenes (``synthetic_nuclei``: 10-32 px nuclei, crowded
or sparse, bright or dim), preferring robustness to a wrong ``diameter_px`` (0.7-1.3 x the
true one) to the best score at the true diameter; no real image was used to choose them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import threshold_li
from skimage.measure import label
from skimage.morphology import disk, remove_small_objects, white_tophat
from skimage.segmentation import relabel_sequential, watershed

from imaging_assets.science.contract import step_contract

CORE = 0.25  # a trimmed-off rest is segmented again where a disk of CORE x diameter fits


def largest_pieces(labels: np.ndarray) -> np.ndarray:
    """``labels`` with each object reduced to its largest 4-connected piece (trimming can
    cut a thin bridge and leave a stray fragment with the same label)."""
    pieces = label(labels, background=0, connectivity=1)
    size = np.bincount(pieces.ravel())
    owner = np.zeros(size.size, labels.dtype)
    owner[pieces.ravel()] = labels.ravel()
    order = np.lexsort((-size, owner))  # by owner, the biggest piece first
    first = np.r_[True, owner[order][1:] != owner[order][:-1]]
    keep = np.zeros(size.size, bool)
    keep[order[first]] = True
    keep[0] = False
    return np.where(keep[pieces], labels, 0)


def noise_sd(plane: np.ndarray) -> float:
    """Robust standard deviation of the pixel noise (intensity units): from the median
    absolute difference between each pixel and the mean of its four neighbours, which object
    edges barely move (and which integer images do not quantise much)."""
    pixels = plane.astype(np.float32)
    if min(pixels.shape) < 3:
        return 0.0
    around = pixels[:-2, 1:-1] + pixels[2:, 1:-1] + pixels[1:-1, :-2] + pixels[1:-1, 2:]
    rest = pixels[1:-1, 1:-1] - around / 4
    return float(1.4826 * np.median(np.abs(rest)) / np.sqrt(1.25))


@dataclass(frozen=True)
class NucleusParams:
    """Lengths in pixels; see ``segment_nuclei``."""

    diameter_px: float
    sigma_px: float
    min_area_px: float
    min_distance_px: float
    background_radius_px: float
    boundary_fraction: float
    min_snr: float


def split_and_trim(
    signal: np.ndarray, mask: np.ndarray, params: NucleusParams, noise: float
) -> np.ndarray:
    """Nuclei (labels 1..n) in ``mask``: a watershed of its distance transform from the
    transform's peaks, less objects peaking under ``min_snr`` x ``noise``, each trimmed to
    where ``signal`` exceeds ``boundary_fraction`` of its own peak."""
    distance = ndimage.gaussian_filter(ndimage.distance_transform_edt(mask), 1.0)
    peaks = peak_local_max(
        distance,
        min_distance=max(1, round(params.min_distance_px)),
        labels=label(mask),
        exclude_border=False,
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    nuclei = watershed(-distance, markers, mask=mask)
    peak = np.asarray(ndimage.maximum(signal, nuclei, index=np.arange(nuclei.max() + 1)))
    nuclei[peak[nuclei] < params.min_snr * noise] = 0  # noise, e.g. in an empty well
    inside = (signal > params.boundary_fraction * peak[nuclei]) & (nuclei > 0)
    nuclei = largest_pieces(np.where(ndimage.binary_fill_holes(inside), nuclei, 0))
    nuclei[np.bincount(nuclei.ravel())[nuclei] <= params.min_area_px] = 0
    return nuclei


def segment_plane(plane: np.ndarray, params: NucleusParams) -> np.ndarray:
    """int32 labels (0 = background, nuclei 1..n) of one 2-D plane; see ``segment_nuclei``."""
    smooth = ndimage.gaussian_filter(plane.astype(np.float32), params.sigma_px)
    radius = max(1, round(params.background_radius_px))
    signal = white_tophat(smooth, disk(radius, decomposition="sequence"))
    if not np.ptp(signal) > 0:  # a blank plane: nothing to threshold
        return np.zeros(plane.shape, np.int32)
    mask = ndimage.binary_fill_holes(signal > threshold_li(signal))
    mask = remove_small_objects(mask, max_size=int(params.min_area_px))
    noise = noise_sd(plane)
    nuclei = split_and_trim(signal, mask, params, noise)
    core = disk(max(1, round(params.diameter_px * CORE)))  # rims and slivers are thinner
    rest = ndimage.binary_opening(mask & (nuclei == 0), core)
    more = split_and_trim(
        signal, remove_small_objects(rest, max_size=int(params.min_area_px)), params, noise
    )
    nuclei = np.where(more > 0, more + nuclei.max(), nuclei)
    return relabel_sequential(nuclei)[0].astype(np.int32)


@step_contract(output="labels", variable_components=("site",))
def segment_nuclei(
    stack: np.ndarray,
    diameter_px: float = 20.0,
    sigma_px: float = 1.0,
    min_area_px: float | None = None,
    min_distance_px: float | None = None,
    background_radius_px: float | None = None,
    boundary_fraction: float = 0.4,
    min_snr: float = 2.75,
) -> np.ndarray:
    """int32 labels ``(N, H, W)`` of the nuclei in each plane of ``stack`` (N, H, W): 0 is
    background, the nuclei of a plane are 1..n.

    ``diameter_px``: expected nucleus diameter (pixels; the other lengths follow from it);
    ``sigma_px``: Gaussian smoothing before thresholding (pixels); ``min_area_px``: smaller
    objects are dropped (pixels; default: a disk a third of the diameter across, ~35 px at
    20 px); ``min_distance_px``: how close two nucleus centres may be (pixels; default: a
    fifth of the diameter); ``background_radius_px``: radius of the top-hat disk (pixels; default:
    the diameter, so nuclei up to twice the expected size survive); ``boundary_fraction``:
    a nucleus ends where its background-corrected intensity falls below this fraction of its
    own peak; ``min_snr``: a nucleus peaks at least this many pixel-noise standard deviations
    above the background (noise alone peaks below 2.4 in planes up to 1024 x 1024 pixels, the
    dimmest synthetic nuclei above 3)."""
    min_area = np.pi * (diameter_px / 6) ** 2 if min_area_px is None else min_area_px
    min_distance = diameter_px / 5 if min_distance_px is None else min_distance_px
    radius = diameter_px if background_radius_px is None else background_radius_px
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise ValueError(f"expected a stack of planes (N, H, W), not an array of {stack.shape}")
    params = NucleusParams(
        diameter_px, sigma_px, min_area, min_distance, radius, boundary_fraction, min_snr
    )
    planes = [segment_plane(plane, params) for plane in stack]
    return np.stack(planes) if planes else np.zeros(stack.shape, np.int32)
