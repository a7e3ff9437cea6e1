"""Generators with known truth: an ECG built from a real median beat at known R times, and an
LV phantom cine with known volumes. Deterministic for a seed; no Dagster."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi

Profile = Literal["sinus", "brady", "tachy", "irregular"]
PROFILE_BPM: dict[str, float] = {"sinus": 72.0, "brady": 45.0, "tachy": 125.0, "irregular": 90.0}


def rr_intervals(profile: Profile, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """RR intervals (s) covering ``seconds``: sinus-like profiles with respiratory sinus
    arrhythmia (0.25 Hz, 3 %) and 1 % jitter; ``irregular`` with independent intervals
    (+-25 %, an irregularly irregular rhythm)."""
    mean = 60.0 / PROFILE_BPM[profile]
    intervals, t = [], 0.0
    while t < seconds + 2 * mean:
        if profile == "irregular":
            rr = mean * rng.uniform(0.75, 1.25)
        else:
            rr = mean * (1 + 0.03 * np.sin(2 * np.pi * 0.25 * t) + 0.01 * rng.standard_normal())
        intervals.append(rr)
        t += rr
    return np.array(intervals)


def synthetic_ecg(
    beat: np.ndarray,
    beat_r_index: int,
    sampling_hz: float,
    seconds: float,
    profile: Profile,
    seed: int = 0,
    noise_uv: float = 20.0,
    wander_uv: float = 150.0,
    mains_uv: float = 50.0,
    mains_hz: float = 50.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(signal samples x leads in uV, true R-peak sample indices): ``beat`` (samples x leads,
    R at ``beat_r_index``) placed at the R times of ``profile``, its T wave scaled to the RR
    interval, plus baseline wander (0.15-0.3 Hz), mains hum and white noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sampling_hz)
    leads = beat.shape[1]
    signal = np.zeros((n, leads))
    r_times = np.cumsum(rr_intervals(profile, seconds, rng)) - 0.4
    peaks = np.round(r_times * sampling_hz).astype(int)
    peaks = peaks[(peaks >= 0) & (peaks < n)]
    baseline = np.median(np.r_[beat[:50], beat[-50:]], axis=0)
    shape = beat - baseline
    for p in peaks:
        lo, hi = p - beat_r_index, p - beat_r_index + len(shape)
        a, b = max(lo, 0), min(hi, n)
        signal[a:b] += shape[a - lo : b - lo]
    t = np.arange(n) / sampling_hz
    for f in rng.uniform(0.15, 0.3, size=2):
        signal += wander_uv / 2 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))[:, None]
    signal += mains_uv * np.sin(2 * np.pi * mains_hz * t)[:, None]
    signal += noise_uv * rng.standard_normal((n, leads))
    return signal, peaks


def lv_phantom(
    frames: int = 120,
    frame_time_ms: float = 33.3,
    heart_rate_bpm: float = 70.0,
    edv_ml: float = 120.0,
    ef_percent: float = 60.0,
    pixel_cm: float = 0.08,
    shape: tuple[int, int] = (256, 256),
    hypokinetic_sector: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """(cine frames x rows x columns uint8, truth): a prolate-ellipsoid LV in an apical view
    (long axis vertical, apex at the top), dark cavity in a bright myocardial wall, inside a
    sector with depth attenuation and speckle. Volumes are the ellipsoid's (4/3 pi a b^2 =
    the area-length volume of its outline). ``hypokinetic_sector`` (1-6, 60 degrees each from
    the long axis) moves at a quarter of the rest."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    esv_ml = edv_ml * (1 - ef_percent / 100)
    b_ed = (3 * edv_ml / (8 * np.pi)) ** (1 / 3)  # long semi-axis a = 2 b at ED: V = 8/3 pi b^3
    a_ed, a_es = 2 * b_ed, 2 * b_ed * 0.9
    b_es = np.sqrt(3 * esv_ml / (4 * np.pi * a_es))
    cycle_s = 60.0 / heart_rate_bpm
    times = np.arange(frames) * frame_time_ms / 1000.0
    phase = (times % cycle_s) / cycle_s
    systole = 0.35
    contraction = np.where(
        phase < systole,
        0.5 - 0.5 * np.cos(np.pi * phase / systole),
        0.5 + 0.5 * np.cos(np.pi * (phase - systole) / (1 - systole)),
    )
    cy, cx = rows * 0.5, cols * 0.5
    yy, xx = np.mgrid[0:rows, 0:cols].astype(float)
    angle = (np.arctan2(xx - cx, yy - cy)) % (2 * np.pi)
    distance = np.hypot(yy - cy, xx - cx) * pixel_cm
    weight = np.zeros_like(angle)
    if hypokinetic_sector:
        centre = (hypokinetic_sector - 0.5) * np.pi / 3
        gap = np.abs((angle - centre + np.pi) % (2 * np.pi) - np.pi)
        weight = np.clip(1.5 - gap / (np.pi / 6), 0, 1)  # full inside the sector, fading out
    apex_y, apex_x = rows * 0.02, cols * 0.5
    fan = (yy - apex_y) > np.abs(xx - apex_x) / np.tan(np.radians(40))
    fan &= np.hypot(yy - apex_y, xx - apex_x) < rows * 0.98
    depth = np.hypot(yy - apex_y, xx - apex_x) / rows
    cine = np.zeros((frames, rows, cols), dtype=np.uint8)

    def radius(a: float, b: float) -> np.ndarray:
        return a * b / np.sqrt((b * np.cos(angle)) ** 2 + (a * np.sin(angle)) ** 2)

    r_ed = radius(a_ed, b_ed)
    truth_ed, truth_es = [], []
    for i, c in enumerate(contraction):
        r = radius(a_ed + c * (a_es - a_ed), b_ed + c * (b_es - b_ed))
        r = r_ed + (r - r_ed) * (1 - 0.75 * weight)
        cavity = distance < r
        wall = (distance < r_ed + 1.0) & ~cavity
        tissue = np.where(cavity, 0.08, np.where(wall, 0.75, 0.35))
        speckle = ndi.gaussian_filter(rng.rayleigh(0.8, size=shape), 0.8)
        image = tissue * speckle * (1.1 - 0.6 * depth) * fan
        cine[i] = np.clip(image * 255, 0, 255).astype(np.uint8)
        if i and contraction[i - 1] < c and (i + 1 == frames or contraction[i + 1] <= c):
            truth_es.append(i)
        if c == contraction[max(0, i - 1) : i + 2].min() and c < 0.05:
            truth_ed.append(i)
    return cine, {
        "edv_ml": edv_ml,
        "esv_ml": esv_ml,
        "ef_percent": ef_percent,
        "es_frames": truth_es,
        "cycle_length_s": cycle_s,
        "pixel_cm": pixel_cm,
        "frame_time_ms": frame_time_ms,
        "hypokinetic_sector": hypokinetic_sector,
    }
