"""Figures for the UI: the ECG strip with its R peaks and the LV volume curve over the cine,
as PNG bytes and as markdown with the image embedded."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from platform_core.figures import figure_png


def ecg_strip_png(signal: np.ndarray, sampling_hz: float, peaks_s: list[float], lead: str) -> bytes:
    """The cleaned rhythm lead (uV) over time (s), R peaks marked."""
    figure, axis = plt.subplots(figsize=(10, 2.4))
    t = np.arange(len(signal)) / sampling_hz
    axis.plot(t, signal, lw=0.7, color="black")
    index = np.clip(np.round(np.asarray(peaks_s) * sampling_hz).astype(int), 0, len(signal) - 1)
    axis.plot(index / sampling_hz, signal[index], "o", color="tab:red", ms=4, label="R peaks")
    axis.set(xlabel="time (s)", ylabel=f"{lead} (uV)")
    axis.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)  # above the trace
    return figure_png(figure)


def volume_curve_png(
    volumes: list[float], frame_time_ms: float, ed: int, es: int, unit: str
) -> bytes:
    """LV volume (or area-length units) per frame, ED and ES frames marked."""
    figure, axis = plt.subplots(figsize=(7, 2.6))
    t = np.arange(len(volumes)) * frame_time_ms / 1000.0
    axis.plot(t, volumes, color="tab:blue")
    axis.plot([t[ed]], [volumes[ed]], "s", color="tab:green", label="ED")
    axis.plot([t[es]], [volumes[es]], "v", color="tab:red", label="ES")
    axis.set(xlabel="time (s)", ylabel=f"LV volume ({unit})")
    axis.legend(loc="upper right")
    return figure_png(figure)
