"""ECG analysis: cleaning, R peaks (neurokit2, cross-checked by sleepecg), heart rate and
time-domain HRV, QT / QTc, ectopy and rhythm flags. Times in seconds or milliseconds as named,
amplitudes in microvolts. A flag is a prompt for review, never a diagnosis.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import neurokit2 as nk
import numpy as np
import sleepecg

RHYTHM_LEADS = ("II", "MLII", "I", "V1")
BEAT_WINDOW_S = (0.10, 0.15)  # before and after the R peak: the QRS morphology compared
EDGE_S = 0.5  # the record's first and last seconds where sleepecg's beats complete neurokit2's


@dataclass(frozen=True)
class BeatMatch:
    """Agreement of detected beats with reference beats within a window."""

    true_positives: int
    false_positives: int
    false_negatives: int
    mean_abs_error_ms: float
    max_abs_error_ms: float

    @property
    def f1(self) -> float:
        found = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / found if found else 1.0


def rhythm_lead(leads: tuple[str, ...]) -> int:
    """Index of the lead to time beats on: lead II where present (the rhythm strip), else I,
    else the first."""
    for name in RHYTHM_LEADS:
        if name in leads:
            return leads.index(name)
    return 0


def clean(signal: np.ndarray, sampling_hz: float) -> np.ndarray:
    """Baseline wander, mains hum and high-frequency noise removed (neurokit2's default
    0.5 Hz high-pass and 50 Hz powerline filter)."""
    return np.asarray(nk.ecg_clean(signal, sampling_rate=sampling_hz), dtype=float)


def r_peaks(cleaned: np.ndarray, sampling_hz: float) -> np.ndarray:
    """R-peak sample indices (neurokit2's detector with artefact correction off)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(cleaned, sampling_rate=sampling_hz)
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


def r_peaks_crosscheck(signal: np.ndarray, sampling_hz: float) -> np.ndarray:
    """R-peak sample indices from an independent detector (sleepecg's Pan-Tompkins variant,
    which filters ``signal`` itself)."""
    return np.asarray(sleepecg.detect_heartbeats(signal, sampling_hz), dtype=int)


def match_beats(
    reference: np.ndarray, detected: np.ndarray, sampling_hz: float, window_s: float = 0.15
) -> BeatMatch:
    """Each reference beat matched to the nearest unmatched detected beat within ``window_s``
    (greedy in time order)."""
    window = window_s * sampling_hz
    used = np.zeros(len(detected), dtype=bool)
    errors = []
    for beat in reference:
        if not len(detected):
            break
        gaps = np.abs(detected - beat).astype(float)
        gaps[used] = np.inf
        best = int(np.argmin(gaps))
        if gaps[best] <= window:
            used[best] = True
            errors.append(gaps[best] * 1000.0 / sampling_hz)
    tp = len(errors)
    return BeatMatch(
        tp,
        int(len(detected) - tp),
        int(len(reference) - tp),
        float(np.mean(errors)) if errors else float("nan"),
        float(np.max(errors)) if errors else float("nan"),
    )


def signal_quality(peaks: np.ndarray, check: np.ndarray, sampling_hz: float) -> float:
    """Quality 0..1: the F1 agreement of ``peaks`` with ``check``, an independent detector's
    beats on the same lead (bSQI, Li, Clark and Clifford 2008). Two detectors agree on a
    readable ECG, ectopic beats included, and disagree on noise. An absolute measure, unlike
    neurokit2's beat similarity, which is rescaled per record (pure noise scores ~0.75 there)."""
    return match_beats(peaks, check, sampling_hz).f1


def with_edge_beats(
    peaks: np.ndarray, check: np.ndarray, samples: int, sampling_hz: float
) -> np.ndarray:
    """``peaks`` with the cross-check detector's beats in the record's first and last
    ``EDGE_S`` seconds that ``peaks`` lacks (no beat within 150 ms): neurokit2's detector
    misses beats in its first ~0.3 s of signal, sleepecg's does not."""
    edge, window = EDGE_S * sampling_hz, 0.15 * sampling_hz
    extra = [
        beat
        for beat in check
        if (beat < edge or beat >= samples - edge)
        and (not len(peaks) or np.min(np.abs(peaks - beat)) > window)
    ]
    return np.sort(np.concatenate([peaks, np.asarray(extra, dtype=int)])).astype(int)


def beat_correlations(cleaned: np.ndarray, peaks: np.ndarray, sampling_hz: float) -> np.ndarray:
    """Correlation of each beat's QRS window with the median beat (NaN at the record's
    edges)."""
    before, after = (int(s * sampling_hz) for s in BEAT_WINDOW_S)
    inside = (peaks >= before) & (peaks + after < len(cleaned))
    windows = np.array([cleaned[p - before : p + after] for p in peaks[inside]])
    out = np.full(len(peaks), np.nan)
    if len(windows) < 3:
        return out
    template = np.median(windows, axis=0)
    centred = windows - windows.mean(axis=1, keepdims=True)
    t = template - template.mean()
    denom = np.linalg.norm(centred, axis=1) * np.linalg.norm(t)
    out[inside] = np.where(denom > 0, centred @ t / np.where(denom > 0, denom, 1), 0.0)
    return out


def ectopic_beats(
    cleaned: np.ndarray,
    peaks: np.ndarray,
    sampling_hz: float,
    premature_ratio: float,
    min_correlation: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(premature, aberrant) flags per beat. Premature: RR below ``premature_ratio`` of the
    median of the surrounding RR intervals and followed by a longer one. Aberrant: QRS
    correlation with the median beat below ``min_correlation`` (ventricular morphology)."""
    premature = np.zeros(len(peaks), dtype=bool)
    if len(peaks) < 4:
        return premature, premature.copy()
    rr = np.diff(peaks) / sampling_hz
    for i in range(1, len(peaks) - 1):
        local = float(np.median(rr[max(0, i - 5) : i + 4]))
        premature[i] = rr[i - 1] < premature_ratio * local and rr[i] > rr[i - 1]
    aberrant = np.nan_to_num(beat_correlations(cleaned, peaks, sampling_hz), nan=1.0)
    return premature, aberrant < min_correlation


def hrv_time(peaks: np.ndarray, sampling_hz: float, ectopic: np.ndarray) -> dict[str, float]:
    """Heart rate (bpm) and time-domain HRV (ms, %) over normal-to-normal intervals: intervals
    touching an ectopic beat are left out. Heart rate is over all RR intervals; SDNN (sample
    standard deviation), RMSSD and pNN50 follow the Task Force definitions."""
    rr_ms = np.diff(peaks) * 1000.0 / sampling_hz
    normal = ~(ectopic[1:] | ectopic[:-1])
    nn = rr_ms[normal] if normal.sum() >= 2 else rr_ms
    successive = np.diff(nn)
    return {
        "heart_rate_bpm": 60_000.0 / float(np.mean(rr_ms)),
        "mean_nn_ms": float(np.mean(nn)),
        "sdnn_ms": float(np.std(nn, ddof=1)) if len(nn) > 1 else 0.0,
        "rmssd_ms": float(np.sqrt(np.mean(successive**2))) if len(successive) else 0.0,
        "pnn50_percent": float(np.mean(np.abs(successive) > 50.0) * 100)
        if len(successive)
        else 0.0,
    }


def qt_interval(cleaned: np.ndarray, peaks: np.ndarray, sampling_hz: float) -> float:
    """Median QT in ms: QRS onset to T-wave end per beat (neurokit2's wavelet delineation).
    The delineated QRS onset is used when it lies within 100 ms before the R peak, else the Q
    peak (the wavelet onset sometimes lands on the P wave); NaN when no beat delineates."""
    if len(peaks) < 3:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, waves = nk.ecg_delineate(cleaned, peaks, sampling_rate=sampling_hz, method="dwt")
        except (ValueError, IndexError, ZeroDivisionError):
            return float("nan")
    onsets = np.asarray(waves["ECG_R_Onsets"], dtype=float)
    lead_in = (peaks - onsets) * 1000.0 / sampling_hz
    q_peaks = np.asarray(waves["ECG_Q_Peaks"], dtype=float)
    onsets = np.where((lead_in > 0) & (lead_in <= 100), onsets, q_peaks)
    ends = np.asarray(waves["ECG_T_Offsets"], dtype=float)
    qt = (ends - onsets) * 1000.0 / sampling_hz
    qt = qt[np.isfinite(qt) & (qt > 200) & (qt < 700)]
    return float(np.median(qt)) if len(qt) else float("nan")


def corrected_qt(qt_ms: float, rr_s: float) -> dict[str, float]:
    """QTc by Bazett (QT / RR^1/2) and Fridericia (QT / RR^1/3), RR in seconds."""
    return {"qtc_bazett_ms": qt_ms / rr_s**0.5, "qtc_fridericia_ms": qt_ms / rr_s ** (1 / 3)}


def irregular(peaks: np.ndarray, sampling_hz: float, ectopic: np.ndarray, ratio: float) -> bool:
    """RR irregularity beyond ectopy: RMSSD of the normal intervals above ``ratio`` of their
    mean (sinus rhythm, sinus arrhythmia included, stays well below 0.1)."""
    rr = np.diff(peaks) / sampling_hz
    normal = ~(ectopic[1:] | ectopic[:-1])
    nn = rr[normal]
    if len(nn) < 6:
        return False
    return float(np.sqrt(np.mean(np.diff(nn) ** 2)) / np.mean(nn)) > ratio


def preprocess(signal: np.ndarray, sampling_hz: float, leads: tuple[str, ...]) -> dict:
    """Every lead cleaned (samples x leads, uV), the rhythm lead, its R peaks (sample indices;
    neurokit2's, with sleepecg's at the record's edges) and their quality 0..1 (the two
    detectors' agreement, ``signal_quality``)."""
    cleaned = np.column_stack([clean(signal[:, k], sampling_hz) for k in range(signal.shape[1])])
    lead = rhythm_lead(leads)
    peaks = r_peaks(cleaned[:, lead], sampling_hz)
    check = r_peaks_crosscheck(cleaned[:, lead], sampling_hz)
    return {
        "cleaned": cleaned,
        "rhythm_lead": lead,
        "peaks": with_edge_beats(peaks, check, len(cleaned), sampling_hz),
        "quality": signal_quality(peaks, check, sampling_hz),
    }


def features(
    rhythm: np.ndarray, peaks: np.ndarray, sampling_hz: float, thresholds: dict[str, float]
) -> dict:
    """Every ECG feature of the cleaned rhythm lead with its R peaks, using the thresholds
    file's ``ecg`` section; R-peak times in seconds from the record's start."""
    premature, aberrant = ectopic_beats(
        rhythm, peaks, sampling_hz, thresholds["premature_ratio"], thresholds["min_correlation"]
    )
    irregular_rhythm = irregular(peaks, sampling_hz, aberrant, thresholds["irregular_rmssd_ratio"])
    if irregular_rhythm:  # in an irregularly irregular rhythm no beat is early by timing alone
        premature[:] = False
    ectopic = premature | aberrant
    rates = hrv_time(peaks, sampling_hz, ectopic) if len(peaks) >= 3 else {}
    qt = qt_interval(rhythm, peaks, sampling_hz)
    hr = rates.get("heart_rate_bpm", float("nan"))
    flags = []
    if hr < thresholds["bradycardia_bpm"]:
        flags.append("bradycardia")
    if hr > thresholds["tachycardia_bpm"]:
        flags.append("tachycardia")
    if irregular_rhythm:
        flags.append("irregular rhythm, review")
    if ectopic.any():
        flags.append("ectopic beats")
    return {
        "sampling_hz": sampling_hz,
        "duration_s": len(rhythm) / sampling_hz,
        "beats": len(peaks),
        "r_peak_times_s": [round(float(p) / sampling_hz, 4) for p in peaks],
        "ectopic_beats": int(ectopic.sum()),
        "premature_beats": int(premature.sum()),
        "aberrant_beats": int(aberrant.sum()),
        **rates,
        "qt_ms": qt,
        **corrected_qt(qt, rates.get("mean_nn_ms", float("nan")) / 1000.0),
        "flags": flags,
    }
