"""Echo analysis on a grey cine (frames x rows x columns, 0..1): frame quality, LV cavity
segmentation per frame (scikit-image), end-diastolic / end-systolic frames, volumes by the
single-plane area-length method (V = 8 A^2 / (3 pi L), mL from cm), ejection fraction, cycle
length and six-sector wall motion.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, measure, morphology, transform

MAX_SIDE_PX = 256


@dataclass(frozen=True)
class LvDetection:
    """The LV cavity per frame (``masks``), its area (px) and long axis (px), and how far the
    detection can be trusted (``confidence`` 0..1, ``reason`` when it is low)."""

    masks: np.ndarray
    areas_px: np.ndarray
    long_axis_px: np.ndarray
    confidence: float
    reason: str


def downsample(frames: np.ndarray) -> tuple[np.ndarray, float]:
    """Frames scaled so the longer side is at most ``MAX_SIDE_PX``; (frames, scale factor)."""
    scale = min(1.0, MAX_SIDE_PX / max(frames.shape[1:]))
    if scale == 1.0:
        return frames.astype(np.float32), 1.0
    shape = (round(frames.shape[1] * scale), round(frames.shape[2] * scale))
    small = np.stack([transform.resize(f, shape, anti_aliasing=True) for f in frames])
    return small.astype(np.float32), scale


def fan_mask(frames: np.ndarray) -> np.ndarray:
    """The imaged sector: where the cine's brightest frame shows tissue, holes filled."""
    peak = filters.gaussian(frames.max(axis=0), sigma=3)
    mask = peak > 0.25 * filters.threshold_otsu(peak)
    labels = measure.label(mask)
    if labels.max() == 0:
        return mask
    largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    return ndi.binary_fill_holes(largest)


def frame_quality(frames: np.ndarray, fan: np.ndarray) -> dict[str, float]:
    """Per-cine quality: frames, fan fraction of the image, median tissue contrast (standard
    deviation inside the fan), fraction of blank frames (no contrast) and of repeated frames."""
    inside = frames[:, fan] if fan.any() else frames.reshape(len(frames), -1)
    contrast = inside.std(axis=1)
    repeats = np.mean([np.array_equal(a, b) for a, b in itertools.pairwise(frames)])
    return {
        "frames": len(frames),
        "fan_fraction": float(fan.mean()),
        "median_contrast": float(np.median(contrast)),
        "blank_frame_fraction": float(np.mean(contrast < 0.01)),
        "repeated_frame_fraction": float(repeats),
    }


def _seed(mean: np.ndarray, fan: np.ndarray, prior: dict[str, float], sigma: float):
    """(seed mask, quantile): the largest dark region of the time-averaged cine enclosed by
    brighter tissue, at the highest brightness quantile of the sector (from 0.7 down to 0.2)
    where one of cavity size and shape appears; (None, 0) when none does."""
    fan_area = max(int(fan.sum()), 1)
    for quantile in np.arange(0.70, 0.19, -0.05):
        bright = (mean >= np.quantile(mean[fan], quantile)) & fan
        closed = ndi.binary_closing(bright, structure=morphology.disk(max(1, int(sigma))))
        labels = measure.label(ndi.binary_fill_holes(closed) & ~closed)
        candidates = [
            r
            for r in measure.regionprops(labels)
            if prior["min_area_fraction"] <= r.area / fan_area <= prior["max_area_fraction"]
            and r.eccentricity <= prior["max_eccentricity"]
        ]
        if candidates:
            return labels == max(candidates, key=lambda r: r.area).label, float(quantile)
    return None, 0.0


def segment_lv(frames: np.ndarray, fan: np.ndarray, prior: dict[str, float]) -> LvDetection:
    """The LV cavity: the dark blood pool enclosed by brighter myocardium. The seed is the
    largest enclosed dark region of the time-averaged cine (``_seed``, sized by ``prior``:
    ``min_area_fraction``..``max_area_fraction`` of the sector); each frame's cavity is its
    dark region (below the same brightness quantile) overlapping the seed most, kept within a
    margin around the seed so that it does not leak through an open valve."""
    sigma = max(1.0, prior["smoothing_fraction"] * max(frames.shape[1:]))
    smooth = np.stack([filters.gaussian(f, sigma=sigma) for f in frames])
    smooth = ndi.median_filter(smooth, size=(3, 1, 1))
    empty = np.zeros_like(frames, dtype=bool)
    zeros = np.zeros(len(frames))
    if not fan.any():
        return LvDetection(empty, zeros, zeros, 0.0, "no imaged sector found")
    seed, quantile = _seed(smooth.mean(axis=0), fan, prior, sigma)
    if seed is None:
        return LvDetection(empty, zeros, zeros, 0.0, "no enclosed cavity-sized dark region")
    margin = max(2, int(prior["margin_fraction"] * np.sqrt(seed.sum())))
    allowed = ndi.binary_dilation(seed, iterations=margin) & fan
    masks = np.zeros_like(empty)
    axes = np.zeros(len(frames))
    for i, frame in enumerate(smooth):
        labels = measure.label((frame < np.quantile(frame[fan], quantile)) & allowed)
        overlap = np.bincount(labels[seed], minlength=labels.max() + 1)
        overlap[0] = 0
        if overlap.max() == 0:
            continue
        cavity = ndi.binary_fill_holes(labels == int(np.argmax(overlap)))
        masks[i] = cavity
        axes[i] = measure.regionprops(cavity.astype(np.uint8))[0].axis_major_length
    areas = masks.reshape(len(masks), -1).sum(axis=1).astype(float)
    confidence, reason = _confidence(areas)
    return LvDetection(masks, areas, axes, confidence, reason)


def _confidence(areas: np.ndarray) -> tuple[float, str]:
    """Share of frames with a cavity of plausible size (0.3..3 x the median), times the
    smoothness of the area curve (1 - median frame-to-frame jump / range)."""
    if not areas.any():
        return 0.0, "no cavity found in any frame"
    median = float(np.median(areas[areas > 0]))
    valid = float(np.mean((areas > 0.3 * median) & (areas < 3 * median)))
    spread = float(np.ptp(areas)) or 1.0
    smooth = 1.0 - min(1.0, float(np.median(np.abs(np.diff(areas)))) / spread)
    confidence = valid * smooth
    if valid < 0.9:
        return confidence, f"cavity missing or implausible in {1 - valid:.0%} of frames"
    if smooth < 0.5:
        return confidence, "cavity area jumps from frame to frame (noise, not a heart cycle)"
    return confidence, ""


def volume_ml(area_px: np.ndarray, long_axis_px: np.ndarray, pixel_cm: float) -> np.ndarray:
    """Single-plane area-length volume 8 A^2 / (3 pi L) in mL (cm^3)."""
    area = area_px * pixel_cm**2
    length = np.where(long_axis_px > 0, long_axis_px * pixel_cm, np.inf)
    return 8 * area**2 / (3 * np.pi * length)


def cycle_frames(curve: np.ndarray, frame_s: float, bounds_s: tuple[float, float]) -> int:
    """Cardiac cycle length in frames: the highest autocorrelation peak of the mean-removed
    curve between ``bounds_s`` seconds (0 when the cine holds no full cycle)."""
    x = curve - curve.mean()
    if not np.any(x):
        return 0
    corr = np.correlate(x, x, mode="full")[len(x) - 1 :] / np.dot(x, x)
    low = max(2, int(bounds_s[0] / frame_s))
    high = min(len(x) - 2, int(bounds_s[1] / frame_s))
    peaks = [k for k in range(low, high) if corr[k] >= corr[k - 1] and corr[k] >= corr[k + 1]]
    peaks = [k for k in peaks if corr[k] > 0.2]
    return max(peaks, key=lambda k: corr[k]) if peaks else 0


def function(
    detection: LvDetection,
    frame_time_ms: float,
    pixel_cm: float,
    cycle_bounds_s: tuple[float, float],
) -> dict:
    """ED / ES frames, EDV, ESV (mL), EF (%) and cycle length (s). With a full cycle in the
    cine (else ``{"skipped": reason}``), EDV and ESV are the maximum and minimum of the volume
    curve within each cycle and EF the median over cycles; the ED and ES frames are those of
    the first cycle. With an unknown pixel size (``pixel_cm`` 0) volumes are not given; EF, a
    ratio, still is."""
    raw = volume_ml(detection.areas_px, detection.long_axis_px, pixel_cm or 1.0)
    frame_s = frame_time_ms / 1000.0
    period = cycle_frames(ndi.median_filter(raw, size=3, mode="nearest"), frame_s, cycle_bounds_s)
    if not period:
        seconds = len(raw) * frame_s
        return {
            "skipped": f"no full cardiac cycle found in {seconds:.1f} s of cine: ED and ES "
            "of one beat cannot be paired"
        }
    # dropouts out with a median over at most a fifth of the cycle: wider would fill the
    # end-systolic trough (systole is about a third of the cycle)
    volumes = ndi.median_filter(raw, size=max(3, (period // 5) | 1), mode="nearest")
    efs, first = [], None
    for start in range(0, len(volumes) - period + 1, period):
        window = volumes[start : start + period]
        ed = start + int(np.argmax(window))
        es = start + int(np.argmin(window))
        efs.append((window.max() - window.min()) / window.max() * 100)
        first = first or (ed, es, float(window.max()), float(window.min()))
    ed, es, edv, esv = first
    return {
        "ed_frame": ed,
        "es_frame": es,
        "edv_ml": edv if pixel_cm else None,
        "esv_ml": esv if pixel_cm else None,
        "ef_percent": float(np.median(efs)),
        "cycle_length_s": period * frame_s,
        "cycles_measured": len(efs),
        "volume_curve_ml": [round(float(v), 2) for v in volumes] if pixel_cm else None,
    }


def wall_motion(
    ed_mask: np.ndarray, es_mask: np.ndarray, thresholds: dict[str, float]
) -> list[dict]:
    """Six 60-degree sectors around the ED centroid, starting at the long axis: each sector's
    fractional shortening 1 - r_ES / r_ED (mean boundary radius) and its class: normal,
    hypokinetic (below ``normal_shortening``) or akinetic (below ``akinetic_shortening``).
    Angles run from the long axis towards the base (down the image, away from the apex)."""
    ys, xs = np.nonzero(ed_mask)
    cy, cx = ys.mean(), xs.mean()
    _, vectors = np.linalg.eigh(np.cov(np.vstack([ys - cy, xs - cx])))
    vy, vx = vectors[:, -1] if vectors[0, -1] >= 0 else -vectors[:, -1]  # towards the base
    axis = np.arctan2(vx, vy)

    def radii(mask: np.ndarray) -> np.ndarray:
        edge = mask & ~ndi.binary_erosion(mask)
        ys, xs = np.nonzero(edge)
        angle = (np.arctan2(xs - cx, ys - cy) - axis) % (2 * np.pi)
        sector = (angle // (np.pi / 3)).astype(int) % 6
        distance = np.hypot(ys - cy, xs - cx)
        return np.array(
            [distance[sector == k].mean() if (sector == k).any() else np.nan for k in range(6)]
        )

    shortening = 1 - radii(es_mask) / radii(ed_mask)
    out = []
    for k, value in enumerate(shortening):
        if not np.isfinite(value):
            label = "not seen"
        elif value < thresholds["akinetic_shortening"]:
            label = "akinetic"
        elif value < thresholds["normal_shortening"]:
            label = "hypokinetic"
        else:
            label = "normal"
        out.append(
            {
                "sector": k + 1,
                "shortening": None if not np.isfinite(value) else round(float(value), 3),
                "motion": label,
            }
        )
    return out
