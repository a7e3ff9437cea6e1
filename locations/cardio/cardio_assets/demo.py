"""Demo studies (embedded default input): ECGs built from the real median beat of pydicom's
12-lead test record at known R times, LV phantom cines with known volumes, metadata, and one
study of the real record and the real cine as they ship. Deterministic; no download."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import pydicom
import wfdb
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cardio_assets.science.formats import ECHO_SOP_CLASSES, lead_names
from cardio_assets.science.synthetic import Profile, lv_phantom, synthetic_ecg

Preset = Literal["default", "bench", "ecg-only"]
REAL_ECG = "waveform_ecg.dcm"
REAL_CINE = "color3d_jpeg_baseline.dcm"


def median_beat() -> tuple[np.ndarray, int, float, tuple[str, ...]]:
    """(beat samples x leads in uV, R index, Hz, lead names): the median beat the ECG cart
    stored beside pydicom's real 12-lead record (its fiducial point is the R index)."""
    ds = pydicom.dcmread(get_testdata_file(REAL_ECG))
    group = ds.WaveformSequence[1]
    r_index = next(
        int(a.ReferencedSamplePositions)
        for a in ds.WaveformAnnotationSequence
        if a.get("AnnotationGroupNumber") == 2
        and a.ConceptNameCodeSequence[0].CodeMeaning == "Fiducial Point"
    )
    names = lead_names(group)
    return (
        np.asarray(ds.waveform_array(1), dtype=float),
        r_index,
        float(group.SamplingFrequency),
        names,
    )


def write_ecg_wfdb(
    folder: Path, name: str, signal: np.ndarray, hz: float, leads: tuple[str, ...]
) -> None:
    """The ECG as a WFDB record (``name.hea`` / ``name.dat``, 16-bit, mV)."""
    wfdb.wrsamp(
        name,
        fs=hz,
        units=["mV"] * len(leads),
        sig_name=list(leads),
        p_signal=signal / 1000.0,
        fmt=["16"] * len(leads),
        adc_gain=[1000.0] * len(leads),
        baseline=[0] * len(leads),
        write_dir=str(folder),
    )


def write_ecg_csv(path: Path, signal: np.ndarray, hz: float, leads: tuple[str, ...]) -> None:
    """The ECG as CSV: a sampling-rate line, a header of lead names, samples in uV."""
    rows = "\n".join(",".join(f"{v:.1f}" for v in row) for row in signal)
    path.write_text(f"# sampling_rate_hz: {hz:g}\n{','.join(leads)}\n{rows}\n")


def write_cine_dicom(path: Path, frames: np.ndarray, frame_time_ms: float, pixel_cm: float) -> None:
    """A grey cine as an uncompressed DICOM ultrasound multi-frame image, with its pixel size
    in an ultrasound region."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = next(iter(ECHO_SOP_CLASSES))
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality = "US"
    ds.NumberOfFrames = len(frames)
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime = f"{frame_time_ms:.3f}"
    region = Dataset()
    region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = (
        frames.shape[2] - 1,
        frames.shape[1] - 1,
    )
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = region.PhysicalDeltaY = pixel_cm
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_study(
    folder: Path,
    profile: Profile | None = "sinus",
    echo: bool = True,
    ecg_format: Literal["wfdb", "csv"] = "wfdb",
    metadata: dict | None = None,
    seconds: float = 10.0,
    ef_percent: float = 60.0,
    hypokinetic_sector: int | None = None,
    seed: int = 0,
) -> dict:
    """One synthetic study folder; returns its truth (R peaks, volumes)."""
    folder.mkdir(parents=True, exist_ok=True)
    truth: dict = {}
    hr = 70.0
    if profile:
        beat, r_index, hz, leads = median_beat()
        signal, peaks = synthetic_ecg(beat, r_index, hz, seconds, profile, seed=seed)
        if ecg_format == "wfdb":
            write_ecg_wfdb(folder, "ecg", signal, hz, leads)
        else:
            write_ecg_csv(folder / "ecg.csv", signal, hz, leads)
        truth["r_peak_times_s"] = (peaks / hz).tolist()
        hr = 60.0 * hz / float(np.mean(np.diff(peaks)))
    if echo:
        cine, echo_truth = lv_phantom(
            heart_rate_bpm=hr,
            ef_percent=ef_percent,
            hypokinetic_sector=hypokinetic_sector,
            seed=seed,
        )
        write_cine_dicom(
            folder / "echo.dcm", cine, echo_truth["frame_time_ms"], echo_truth["pixel_cm"]
        )
        truth["echo"] = echo_truth
    if metadata is not None:
        (folder / "metadata.json").write_text(json.dumps(metadata))
    return truth


def real_study(folder: Path) -> None:
    """The real 12-lead record and the real apical four-chamber cine, as they ship."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(get_testdata_file(REAL_ECG), folder / "ecg.dcm")
    shutil.copy(get_testdata_file(REAL_CINE), folder / "echo.dcm")


def demo(out: Path, preset: Preset = "default", count: int = 100) -> list[Path]:
    """Write the preset's studies under ``out``; returns their folders.

    - ``default``: sinus ECG + echo + metadata; irregular rhythm + metadata (CHA2DS2-VASc);
      bradycardia ECG only (CSV); tachycardia + a hypokinetic sector; the real record and
      cine.
    - ``bench``: ``count`` studies of a 10-s 12-lead ECG and a 120-frame echo.
    - ``ecg-only``: ``count`` cheap ECG-only studies (scale tests).
    """
    made = []
    if preset == "default":
        meta = {"age": 71, "sex": "female", "hypertension": True, "diabetes": False}
        specs = [
            ("study-sinus", {"metadata": meta}),
            ("study-irregular", {"profile": "irregular", "metadata": {**meta, "age": 78}}),
            ("study-brady", {"profile": "brady", "echo": False, "ecg_format": "csv"}),
            ("study-tachy", {"profile": "tachy", "hypokinetic_sector": 2, "ef_percent": 45}),
        ]
        for i, (name, kwargs) in enumerate(specs):
            make_study(out / name, seed=i, **kwargs)
            made.append(out / name)
        real_study(out / "study-real")
        made.append(out / "study-real")
    else:
        for i in range(count):
            folder = out / f"study-{i:05d}"
            make_study(
                folder,
                echo=preset == "bench",
                seed=i,
                profile=("sinus", "brady", "tachy", "irregular")[i % 4],
            )
            made.append(folder)
    return made
