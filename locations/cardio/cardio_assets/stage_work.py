"""The work of each cardio stage, as the stage worker runs it (``stage_worker``): plain values
in, plain values and arrays out, no Dagster. The worker imports only this module (numpy,
scipy, pydicom, wfdb, neurokit2, matplotlib: the science), not the location's definitions.

The assets (``defs/assets``) store what comes back: arrays are written there, atomically,
after the work returned, so a stage killed past its time limit has written nothing. A study
file that cannot be used raises ``StudyInputError`` (the file and the reason), a hard stop
``HardStopError``; the asset turns each into the study's failure (``in_worker``).
"""

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pydicom
from pydicom.pixels import iter_pixels

from cardio_assets.science import clinical, ecg, echo, formats, plots
from cardio_assets.science.clinical import MetadataError
from platform_core.confine import InputFolder

HardStop = Literal["E_HARD_001", "E_HARD_002", "E_HARD_003", "E_HARD_004"]
MODALITY = {
    "ecg-dicom": "ecg",
    "ecg-wfdb": "ecg",
    "ecg-csv": "ecg",
    "echo-dicom": "echo",
    "metadata": "metadata",
}
# Files that are not regular: reading one may block for ever (a pipe nobody writes, a
# socket) or never end (a device).
NOT_REGULAR = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class HardStopError(Exception):
    """One of the seed's hard stops, found by a stage's work (never retried)."""

    def __init__(self, code: HardStop, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def __reduce__(self) -> tuple:  # raised in the stage worker, re-raised in the run
        return type(self), (self.code, self.message)


def load(path: str | Path) -> np.ndarray:
    """An array an asset stored (``platform_core.io.write_array``); pickle refused."""
    return np.load(path, allow_pickle=False)


# Receipt, validation, metadata


def _is_study_file(path: Path, folder: InputFolder) -> bool:
    """True for a regular file (links followed, confined to the folder), False for a
    sub-folder (not a study file); a pipe, socket, device or a link to nothing is refused,
    naming what it is: it is never silently skipped, nor opened (opening a pipe blocks)."""
    try:
        mode = formats.checked(path, folder).stat().st_mode
    except FileNotFoundError:
        raise formats.StudyInputError(
            path, "a link to nothing (its target does not exist)"
        ) from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return stat.S_ISREG(mode)
    what = NOT_REGULAR.get(stat.S_IFMT(mode), f"a file of type {stat.S_IFMT(mode):o}")
    raise formats.StudyInputError(path, f"{what}, not a regular file: not read")


def _receive(path: Path, folder: InputFolder, max_mb: float) -> dict:
    """A study file's name, size and sha256, opened through its folder: E_HARD_004 over the
    size limit (nothing read)."""
    with formats.open_study_file(path, folder) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_mb * 1e6:
            raise HardStopError(
                "E_HARD_004",
                f"{path.name} is {size / 1e6:.1f} MB, over the {max_mb:g} MB input limit "
                "(not read)",
            )
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"name": path.name, "bytes": size, "sha256": digest}


def receive_all(folder: InputFolder, max_mb: float, marker: str) -> list[dict]:
    """Each file of the study folder (not hidden, not the inbox's ``marker``), by name, with
    its size and sha256; the folder itself may not be a link swapped in."""
    listed = formats.checked(folder.path, folder)
    names = sorted(p for p in listed.iterdir() if not p.name.startswith(".") and p.name != marker)
    paths = [folder.path / p.name for p in names]
    return [_receive(p, folder, max_mb) for p in paths if _is_study_file(p, folder)]


def _validated(path: Path, kind: formats.Kind, folder: InputFolder) -> tuple[dict, int]:
    """An ECG's or echo's record fields and the bytes its signal decodes to."""
    if MODALITY[kind] == "ecg":
        record = formats.read_ecg(path, kind, folder)
        fields = {"sampling_hz": record.sampling_hz, "leads": list(record.leads)}
        return {**fields, "seconds": record.seconds}, record.signal.nbytes
    if MODALITY[kind] == "echo":
        header = formats.check_echo(path, formats.echo_header(path, folder))
        fields = {
            "frames": header.frames,
            "rows": header.rows,
            "columns": header.columns,
            "frame_time_ms": header.frame_time_ms,
            "pixel_spacing_cm": header.pixel_spacing_cm,
        }
        return fields, header.decoded_bytes * 4  # float32 grey frames
    return {}, 0


def validate(folder: InputFolder, files: list[dict]) -> tuple[dict[str, dict], int]:
    """Each received file recognised by content and checked: modality -> its record, and the
    bytes the study's signals decode to."""
    found: dict[str, dict] = {}
    decoded = 0
    for entry in files:
        path = folder.path / entry["name"]
        kind = formats.identify(path, folder)
        if kind is None or kind == "wfdb-signal":
            continue
        modality = MODALITY[kind]
        if modality in found:
            raise formats.StudyInputError(
                path, f"a second {modality} file (first: {found[modality]['file']})"
            )
        fields, size = _validated(path, kind, folder)
        found[modality] = {"file": entry["name"], "kind": kind, "sha256": entry["sha256"], **fields}
        decoded += size
    return found, decoded


def normalize(folder: InputFolder, name: str) -> dict:
    """The study's clinical metadata read and normalised; a bad field fails naming it."""
    path = folder.path / name
    try:
        return clinical.normalize_metadata(formats.read_metadata(path, folder))
    except MetadataError as error:
        raise formats.StudyInputError(path, str(error)) from error


# ECG


def ecg_preprocess(folder: InputFolder, entry: dict) -> tuple[dict, np.ndarray]:
    """The ECG read and cleaned with its R peaks: the record, and the cleaned leads (float32,
    samples x leads) for the asset to store."""
    record = formats.read_ecg(folder.path / entry["file"], entry["kind"], folder)
    result = ecg.preprocess(record.signal, record.sampling_hz, record.leads)
    value = {
        "status": "ok",
        "sampling_hz": record.sampling_hz,
        "leads": list(record.leads),
        "rhythm_lead": record.leads[result["rhythm_lead"]],
        "peaks": result["peaks"].tolist(),
        "quality": result["quality"],
    }
    return value, result["cleaned"].astype(np.float32)


def ecg_analyse(preprocessed: dict, thresholds: dict) -> tuple[dict, bytes]:
    """The rhythm lead's features and its strip plot (PNG) over the first 10 s."""
    cleaned = load(preprocessed["signal_path"])
    rhythm = cleaned[:, preprocessed["leads"].index(preprocessed["rhythm_lead"])]
    fs = preprocessed["sampling_hz"]
    result = ecg.features(rhythm.astype(float), np.asarray(preprocessed["peaks"]), fs, thresholds)
    seconds = min(len(rhythm) / fs, 10.0)
    strip = plots.ecg_strip_png(
        rhythm[: int(seconds * fs)],
        fs,
        [t for t in result["r_peak_times_s"] if t < seconds],
        preprocessed["rhythm_lead"],
    )
    return result, strip


# Echo


def _frame_bytes(header: formats.EchoHeader) -> int:
    """Work memory of one decoded frame (float64), bytes."""
    return header.rows * header.columns * header.samples_per_pixel * 8


def _decode(
    source: BinaryIO, header: formats.EchoHeader, batch: int, max_batch_mb: float
) -> np.ndarray:
    """The cine as grey frames (0..1), cropped and downsampled, ``batch`` frames at a time;
    MemoryError when a batch would decode to more than ``max_batch_mb``."""
    frame_bytes = _frame_bytes(header)
    if batch * frame_bytes > max_batch_mb * 1e6:
        raise MemoryError(
            f"a batch of {batch} frames needs {batch * frame_bytes / 1e6:.0f} MB, over "
            f"{max_batch_mb:g} MB"
        )
    out, pending = [], []
    for frame in iter_pixels(source):
        pending.append(frame)
        if len(pending) == batch:
            out.append(echo.downsample(formats.grey_frames(np.stack(pending), header))[0])
            pending = []
    if pending:
        out.append(echo.downsample(formats.grey_frames(np.stack(pending), header))[0])
    frames = np.concatenate(out)
    return frames / (float(frames.max()) or 1.0)


def echo_preprocess(
    folder: InputFolder, name: str, batching: tuple[int, float, int]
) -> tuple[dict, np.ndarray, np.ndarray]:
    """The cine decoded in batches (``batching``: most frames per batch, batch memory MB, the
    retry number that halves it), its fan and frame quality: the record, the frames (float32)
    and the fan mask for the asset to store."""
    path = folder.path / name
    most_frames, max_batch_mb, retry = batching
    header = formats.echo_header(path, folder)
    # as many frames as fit the batch memory limit (at most most_frames), halved on each
    # retry after a MemoryError
    fits = max(1, int(max_batch_mb * 1e6 // _frame_bytes(header)))
    batch = max(1, min(most_frames, fits) // 2**retry)
    with formats.open_study_file(path, folder) as source:
        try:
            frames = _decode(source, header, batch, max_batch_mb)
        except (ValueError, RuntimeError, pydicom.errors.InvalidDicomError) as error:
            raise formats.StudyInputError(
                path, f"pixel data cannot be decoded ({error})"
            ) from error
    scale = frames.shape[2] / (
        header.region[2] - header.region[0] + 1 if header.region else header.columns
    )
    fan = echo.fan_mask(frames)
    value = {
        "status": "ok",
        "frame_time_ms": header.frame_time_ms,
        "pixel_cm": header.pixel_spacing_cm / scale if header.pixel_spacing_cm else 0.0,
        "quality": echo.frame_quality(frames, fan),
        "frames": len(frames),
        "batch_frames": batch,
    }
    return value, frames.astype(np.float32), fan


def detect(preprocessed: dict, template: dict) -> tuple[dict, np.ndarray | None]:
    """The LV cavity per frame and the detection's confidence: the record and the masks for
    the asset to store; status ``failed`` with the reason (no masks) when the echo model
    fails on this cine."""
    frames = load(preprocessed["frames_path"])
    fan = load(preprocessed["fan_path"])
    try:
        found = echo.segment_lv(frames, fan, template)
    except (ValueError, IndexError) as error:  # the echo model failed on this cine
        return {"status": "failed", "reason": f"LV detection failed: {error}"}, None
    value = {
        "status": "ok",
        "areas_px": found.areas_px.tolist(),
        "long_axis_px": found.long_axis_px.tolist(),
        "confidence": found.confidence,
        "reason": found.reason,
    }
    return value, found.masks


def lv_function(detection: dict, preprocessed: dict, thresholds: dict) -> dict:
    """ED / ES, volumes, EF, cycle length and wall motion with the LV volume curve (PNG in
    ``curve_png``); status ``skipped`` with the reason when the detection cannot be trusted or
    the cine holds no full cycle."""
    if detection["confidence"] < thresholds["min_detection_confidence"]:
        reason = (
            f"low-confidence LV detection ({detection['confidence']:.2f} < "
            f"{thresholds['min_detection_confidence']}): {detection['reason']}"
        )
        return {"status": "skipped", "reason": reason}
    found = echo.LvDetection(
        load(detection["masks_path"]),
        np.asarray(detection["areas_px"]),
        np.asarray(detection["long_axis_px"]),
        detection["confidence"],
        detection["reason"],
    )
    pixel_cm = preprocessed["pixel_cm"]
    result = echo.function(
        found, preprocessed["frame_time_ms"], pixel_cm, tuple(thresholds["cycle_bounds_s"])
    )
    if "skipped" in result:
        return {"status": "skipped", "reason": result["skipped"]}
    sectors = echo.wall_motion(
        found.masks[result["ed_frame"]], found.masks[result["es_frame"]], thresholds
    )
    curve = (
        result["volume_curve_ml"]
        or echo.volume_ml(found.areas_px, found.long_axis_px, 1.0).tolist()
    )
    png = plots.volume_curve_png(
        curve,
        preprocessed["frame_time_ms"],
        result["ed_frame"],
        result["es_frame"],
        "mL" if pixel_cm else "pixel units",
    )
    return {
        "status": "ok",
        "confidence": found.confidence,
        **result,
        "wall_motion": sectors,
        "curve_png": png,
    }


# Fusion


def fuse(ecg_result: dict | None, echo_result: dict | None, tolerance: float) -> dict:
    """The modalities fused; when fusion fails, each modality's result with the reason."""
    try:
        return {"status": "ok", **clinical.fuse(ecg_result, echo_result, tolerance)}
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        return {
            "status": "failed",
            "reason": f"fusion failed: {error}",
            "ecg": ecg_result,
            "echo": echo_result,
        }
