"""What a study's files are, recognised by content (DICOM SOP class, WFDB header, a CSV's
sampling-rate line, a JSON object), and their readers with the checks a reader must make.

Every refusal is a ``StudyInputError`` naming the file and the reason. Files are read
through an ``InputFolder`` (platform_core.confine: a study from the inbox is confined to
its folder), or as named (``AS_NAMED``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pydicom
import wfdb
from pydicom.errors import InvalidDicomError

from platform_core.confine import AS_NAMED, InputFolder

Kind = Literal["ecg-dicom", "ecg-wfdb", "ecg-csv", "echo-dicom", "metadata", "wfdb-signal"]
ECG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG Waveform Storage",
}
ECHO_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage"}
MIN_SAMPLING_HZ = 250.0
MIN_ECG_SECONDS = 6.0
MIN_ECHO_FRAMES = 10
FLAT_MICROVOLTS = 10.0


class StudyInputError(ValueError):
    """A file of a study that cannot be used; the message names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple:  # raised in a stage worker, re-raised in the run
        return type(self), (self.path, self.reason)


def open_study_file(path: Path, files: InputFolder = AS_NAMED) -> BinaryIO:
    """``path`` opened for reading through ``files``; a refusal is a StudyInputError."""
    try:
        return files.open(path)
    except PermissionError as error:
        raise StudyInputError(path, f"not read: {error}") from error


def checked(path: Path, files: InputFolder) -> Path:
    """``path`` if it may be read through ``files`` (``InputFolder.check``); a refusal is a
    StudyInputError."""
    try:
        return files.check(path)
    except PermissionError as error:
        raise StudyInputError(path, f"not read: {error}") from error


@dataclass(frozen=True)
class EcgRecord:
    """A multi-lead ECG: ``signal`` (samples x leads) in microvolts, ``sampling_hz`` in Hz."""

    signal: np.ndarray
    sampling_hz: float
    leads: tuple[str, ...]
    source: str

    @property
    def seconds(self) -> float:
        return self.signal.shape[0] / self.sampling_hz


@dataclass(frozen=True)
class EchoHeader:
    """What a cine's header declares, read without decoding a pixel."""

    frames: int
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    frame_time_ms: float
    pixel_spacing_cm: float  # 0: unknown (volumes cannot be given, EF can)
    region: tuple[int, int, int, int] | None  # x0, y0, x1, y1 of the ultrasound image

    @property
    def decoded_bytes(self) -> int:
        return (
            self.frames
            * self.rows
            * self.columns
            * self.samples_per_pixel
            * self.bits_allocated
            // 8
        )


def _is_dicom(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def _sop_class(path: Path, handle: BinaryIO) -> str:
    handle.seek(0)
    try:
        return str(pydicom.dcmread(handle, stop_before_pixels=True).SOPClassUID)
    except (InvalidDicomError, AttributeError, ValueError, OSError) as error:
        raise StudyInputError(path, f"unreadable DICOM header ({error})") from error


def identify(path: Path, files: InputFolder = AS_NAMED) -> Kind | None:
    """The kind of a study file from its content, ``None`` for a file to ignore (hidden files,
    the inbox marker). A ``.dcm`` that is not DICOM, a DICOM of another SOP class or a file of
    no known kind is refused."""
    if path.name.startswith("."):
        return None
    with open_study_file(path, files) as handle:
        head = handle.read(4096)
        sop = _sop_class(path, handle) if _is_dicom(head) else None
    if sop is not None:
        if sop in ECG_SOP_CLASSES:
            return "ecg-dicom"
        if sop in ECHO_SOP_CLASSES:
            return "echo-dicom"
        raise StudyInputError(
            path,
            f"DICOM of SOP class {sop} ({pydicom.uid.UID(sop).name}); expected a 12-lead ECG "
            "waveform or an ultrasound multi-frame cine",
        )
    if path.suffix.lower() == ".dcm":
        raise StudyInputError(path, "not DICOM (no 'DICM' marker at byte 128)")
    text = _text(head)
    if text is not None and text.lstrip().startswith("{"):
        return "metadata"
    if path.suffix.lower() == ".hea" or (text is not None and _looks_like_wfdb_header(text)):
        return "ecg-wfdb"
    if text is not None and text.lstrip().lower().startswith(("# sampling_rate", "sampling_rate")):
        return "ecg-csv"
    if path.with_suffix(".hea").exists():
        return "wfdb-signal"
    raise StudyInputError(
        path, "not a DICOM file, a WFDB header, a CSV ECG with a sampling-rate line or JSON"
    )


def _text(head: bytes) -> str | None:
    """The start of a file as text, or None for binary data (NUL bytes or invalid UTF-8; a
    character cut at the end of ``head`` is fine): samples whose first byte happens to be '{'
    are not JSON."""
    if b"\0" in head:
        return None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None


def _looks_like_wfdb_header(text: str) -> bool:
    fields = text.splitlines()[0].split() if text.strip() else []
    return (
        len(fields) >= 3
        and fields[1].isdigit()
        and fields[2].split("/")[0].replace(".", "", 1).isdigit()
    )


def check_ecg(record: EcgRecord, path: Path) -> EcgRecord:
    """Refuse an ECG that cannot be analysed: too slow a sampling rate, too short, not finite,
    or flat on every lead."""
    if record.sampling_hz < MIN_SAMPLING_HZ:
        raise StudyInputError(
            path, f"sampled at {record.sampling_hz:g} Hz; at least {MIN_SAMPLING_HZ:g} Hz needed"
        )
    if record.seconds < MIN_ECG_SECONDS:
        raise StudyInputError(
            path, f"{record.seconds:.1f} s long; at least {MIN_ECG_SECONDS:g} s needed"
        )
    bad = np.argwhere(~np.isfinite(record.signal))
    if len(bad):
        row, column = bad[0]
        raise StudyInputError(
            path,
            f"{len(bad)} missing or non-finite samples (first: sample {row}, lead "
            f"{record.leads[column]})",
        )
    if np.all(np.ptp(record.signal, axis=0) < FLAT_MICROVOLTS):
        raise StudyInputError(path, f"flat signal: every lead spans < {FLAT_MICROVOLTS:g} uV")
    return record


def _check_wfdb(record: Path, files: InputFolder, seen: set[Path]) -> None:
    """Check every file ``wfdb.rdrecord(record)`` opens (wfdb takes paths): the header, the
    signal files it names and each segment's (a header may name any path)."""
    if record in seen:
        return
    seen.add(record)
    checked(record.with_name(record.name + ".hea"), files)
    header = wfdb.rdheader(str(record))
    for name in getattr(header, "file_name", None) or []:
        checked(record.parent / name, files)
    for name in getattr(header, "seg_name", None) or []:
        if name != "~":
            _check_wfdb(record.parent / name, files, seen)


def read_ecg(path: Path, kind: Kind, files: InputFolder = AS_NAMED) -> EcgRecord:
    """The ECG in ``path`` (``kind`` from ``identify``), checked."""
    try:
        if kind == "ecg-dicom":
            record = _read_dicom_ecg(path, files)
        elif kind == "ecg-wfdb":
            _check_wfdb(path.with_suffix(""), files, set())
            signal = wfdb.rdrecord(str(path.with_suffix("")))
            scale = [1000.0 if (u or "mV").lower() == "mv" else 1.0 for u in signal.units]
            record = EcgRecord(
                signal.p_signal * np.array(scale),
                float(signal.fs),
                tuple(signal.sig_name),
                path.name,
            )
        elif kind == "ecg-csv":
            record = _read_csv_ecg(path, files)
        else:
            raise StudyInputError(path, f"{kind} is not an ECG")
    except StudyInputError:
        raise
    except (ValueError, OSError, IndexError, KeyError, AttributeError) as error:
        raise StudyInputError(path, f"unreadable ECG ({error})") from error
    return check_ecg(record, path)


def lead_names(group: pydicom.Dataset) -> tuple[str, ...]:
    """A DICOM waveform group's channel names as leads are written: 'Lead II' -> 'II',
    'Lead I (Einthoven)' -> 'I'."""
    return tuple(
        str(c.ChannelSourceSequence[0].CodeMeaning)
        .replace(" (Einthoven)", "")
        .removeprefix("Lead ")
        for c in group.ChannelDefinitionSequence
    )


def _read_dicom_ecg(path: Path, files: InputFolder) -> EcgRecord:
    with open_study_file(path, files) as handle:
        ds = pydicom.dcmread(handle)
    group = ds.WaveformSequence[0]
    names = lead_names(group)
    return EcgRecord(
        np.asarray(ds.waveform_array(0), dtype=float),
        float(group.SamplingFrequency),
        names,
        path.name,
    )


def _read_text(path: Path, files: InputFolder) -> str:
    """A file's text as ``Path.read_text`` reads it (locale encoding, universal newlines)."""
    with io.TextIOWrapper(open_study_file(path, files)) as text:
        return text.read()


def _read_csv_ecg(path: Path, files: InputFolder) -> EcgRecord:
    """``# sampling_rate_hz: 500`` (or ``sampling_rate=500``), a header of lead names, one row
    per sample in microvolts."""
    text = _read_text(path, files)
    first, _, body = text.partition("\n")
    try:
        rate = float(first.replace(":", "=").split("=", 1)[1])
    except (IndexError, ValueError) as error:
        raise StudyInputError(
            path, f"first line {first!r} does not give a sampling rate"
        ) from error
    rows = list(csv.reader(io.StringIO(body)))
    if len(rows) < 2:
        raise StudyInputError(path, "no samples")
    header, values = rows[0], rows[1:]
    try:
        signal = np.array(
            [[float(v) if v.strip() else np.nan for v in row] for row in values], dtype=float
        )
    except ValueError as error:
        raise StudyInputError(path, f"a sample is not a number ({error})") from error
    if signal.ndim != 2 or signal.shape[1] != len(header):
        raise StudyInputError(path, f"rows do not all have the {len(header)} header columns")
    return EcgRecord(signal, rate, tuple(h.strip() for h in header), path.name)


def echo_header(path: Path, files: InputFolder = AS_NAMED) -> EchoHeader:
    """The cine's declared geometry (nothing decoded)."""
    with open_study_file(path, files) as handle:
        ds = pydicom.dcmread(handle, stop_before_pixels=True)
    region, spacing = None, 0.0
    for r in ds.get("SequenceOfUltrasoundRegions", []):
        region = (
            int(r.RegionLocationMinX0),
            int(r.RegionLocationMinY0),
            int(r.RegionLocationMaxX1),
            int(r.RegionLocationMaxY1),
        )
        spacing = float(r.PhysicalDeltaX) if int(r.get("PhysicalUnitsXDirection", 0)) == 3 else 0.0
        break
    if region and (region[2] >= int(ds.Columns) or region[3] >= int(ds.Rows)):
        region, spacing = None, 0.0  # a region beyond the image: the header was not rescaled
    frame_time = float(ds.get("FrameTime", 0) or 0) or 1000.0 / float(ds.get("CineRate", 30) or 30)
    return EchoHeader(
        frames=int(ds.get("NumberOfFrames", 1) or 1),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        samples_per_pixel=int(ds.get("SamplesPerPixel", 1)),
        bits_allocated=int(ds.get("BitsAllocated", 8)),
        frame_time_ms=frame_time,
        pixel_spacing_cm=spacing,
        region=region,
    )


def grey_frames(pixels: np.ndarray, header: EchoHeader) -> np.ndarray:
    """Decoded frames (frames x rows x columns [x samples]) as grey float frames cropped to the
    cine's ultrasound region."""
    grey = pixels.mean(axis=-1) if header.samples_per_pixel > 1 else pixels.astype(float)
    grey = grey.reshape(-1, header.rows, header.columns)
    if header.region:
        x0, y0, x1, y1 = header.region
        grey = grey[:, y0 : y1 + 1, x0 : x1 + 1]
    return grey


def check_echo(path: Path, header: EchoHeader) -> EchoHeader:
    """Refuse a cine too short to hold a cardiac cycle (below ``MIN_ECHO_FRAMES`` frames)."""
    if header.frames < MIN_ECHO_FRAMES:
        raise StudyInputError(
            path, f"{header.frames} frames; at least {MIN_ECHO_FRAMES} needed for a cardiac cycle"
        )
    return header


def read_echo(path: Path, header: EchoHeader, files: InputFolder = AS_NAMED) -> np.ndarray:
    """The whole cine as grey frames (float32 0..1) cropped to its ultrasound region; refused
    below ``MIN_ECHO_FRAMES`` frames."""
    check_echo(path, header)
    with open_study_file(path, files) as handle:
        try:
            grey = grey_frames(pydicom.dcmread(handle).pixel_array, header)
        except (ValueError, OSError, RuntimeError, AttributeError) as error:
            raise StudyInputError(path, f"pixel data cannot be decoded ({error})") from error
    return (grey / (float(grey.max()) or 1.0)).astype(np.float32)


def read_metadata(path: Path, files: InputFolder = AS_NAMED) -> dict:
    """The study's ``metadata.json`` object (checked by science.clinical)."""
    try:
        value = json.loads(_read_text(path, files))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StudyInputError(path, f"not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise StudyInputError(path, "metadata must be a JSON object")
    return value
