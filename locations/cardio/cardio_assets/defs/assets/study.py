"""Receipt, validation and metadata: what the study folder holds, whether it can be analysed,
and the clinical metadata normalised. Every file is read through the registered study's
folder (``study_folder``): a study from the inbox only inside it."""

import hashlib
import os
from pathlib import Path

import dagster as dg

from cardio_assets.defs.assets.common import hard_stop, input_failure, recoverable, stage_timer
from cardio_assets.inputs import study_folder
from cardio_assets.partitions import STUDY_ASSET
from cardio_assets.resources import CardioConfig
from cardio_assets.science import formats
from cardio_assets.science.clinical import MetadataError, normalize_metadata
from platform_core.confine import InputFolder
from platform_core.datastore import DataStore
from platform_core.inbox import MARKER
from platform_core.keys import InvalidKeyError

MODALITY = {
    "ecg-dicom": "ecg",
    "ecg-wfdb": "ecg",
    "ecg-csv": "ecg",
    "echo-dicom": "echo",
    "metadata": "metadata",
}


def _receive(study: str, folder: InputFolder, path: Path, max_mb: float) -> dict:
    """A study file's name, size and sha256, opened through its folder: E_HARD_004 over the
    size limit (nothing read); a file that may not be read (a link out of a confined study)
    fails naming it."""
    try:
        with formats.open_study_file(path, folder) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_mb * 1e6:
                raise hard_stop(
                    "E_HARD_004",
                    f"study {study}: {path.name} is {size / 1e6:.1f} MB, over the "
                    f"{max_mb:g} MB input limit (not read)",
                )
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except formats.StudyInputError as error:
        raise input_failure(study, error) from error
    return {"name": path.name, "bytes": size, "sha256": digest}


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="RECEIPT: every file of the study folder with its size and sha256, before "
    "anything is parsed. A file over the input size limit stops the study here (E_HARD_004), "
    "before it is read; so does a file of an inbox study that leads out of its folder.",
)
def study_receipt(
    context: dg.AssetExecutionContext, cardio: CardioConfig, storage: DataStore
) -> dict:
    study = context.partition_key
    with stage_timer(context) as meta, recoverable(context):
        try:
            folder = study_folder(storage, study)
            listed = folder.check(folder.path)  # not a link swapped in for the folder
        except (FileNotFoundError, InvalidKeyError, PermissionError) as error:
            raise dg.Failure(f"study {study}: {error}", allow_retries=False) from error
        paths = sorted(
            p
            for p in listed.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.name != MARKER
        )
        files = [_receive(study, folder, p, cardio.max_input_mb) for p in paths]
        meta.update(
            {
                "files": len(files),
                "source": dg.MetadataValue.path(str(folder.path)),
                "megabytes": round(sum(f["bytes"] for f in files) / 1e6, 3),
            }
        )
    return {"study": study, "source": str(folder.path), "files": files}


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="VALIDATION: each file recognised by content (DICOM SOP class, WFDB header, "
    "CSV sampling-rate line, JSON) and checked: sampling rate, length, finite and non-flat "
    "ECG; cine frame count; the decoded size within the memory limit (E_HARD_002, before "
    "decoding). A file that cannot be used fails the study naming it; a study with neither "
    "ECG nor echo is E_HARD_001.",
)
def validated_study(
    context: dg.AssetExecutionContext,
    study_receipt: dict,
    cardio: CardioConfig,
    storage: DataStore,
) -> dict:
    study = context.partition_key
    folder = study_folder(storage, study)
    found: dict[str, dict] = {}
    decoded = 0
    with stage_timer(context) as meta, recoverable(context):
        for entry in study_receipt["files"]:
            path = folder.path / entry["name"]
            try:
                kind = formats.identify(path, folder)
                if kind is None or kind == "wfdb-signal":
                    continue
                modality = MODALITY[kind]
                if modality in found:
                    raise formats.StudyInputError(
                        path, f"a second {modality} file (first: {found[modality]['file']})"
                    )
                record = {"file": entry["name"], "kind": kind, "sha256": entry["sha256"]}
                if modality == "ecg":
                    ecg = formats.read_ecg(path, kind, folder)
                    record.update(
                        sampling_hz=ecg.sampling_hz, leads=list(ecg.leads), seconds=ecg.seconds
                    )
                    decoded += ecg.signal.nbytes
                elif modality == "echo":
                    header = formats.check_echo(path, formats.echo_header(path, folder))
                    record.update(
                        frames=header.frames,
                        rows=header.rows,
                        columns=header.columns,
                        frame_time_ms=header.frame_time_ms,
                        pixel_spacing_cm=header.pixel_spacing_cm,
                    )
                    decoded += header.decoded_bytes * 4  # float32 grey frames
                found[modality] = record
            except formats.StudyInputError as error:
                raise input_failure(study, error) from error
        if decoded > cardio.memory_limit_mb * 1e6:
            raise hard_stop(
                "E_HARD_002",
                f"study {study}: decoding needs {decoded / 1e6:.0f} MB, over the "
                f"{cardio.memory_limit_mb:g} MB memory limit (nothing decoded)",
            )
        if "ecg" not in found and "echo" not in found:
            names = [f["name"] for f in study_receipt["files"]] or ["no files"]
            raise hard_stop(
                "E_HARD_001", f"study {study}: neither an ECG nor an echo among {names}"
            )
        meta.update(
            {"modalities": ", ".join(sorted(found)), "decoded_megabytes": round(decoded / 1e6, 1)}
        )
    return {"study": study, "source": str(folder.path), "modalities": sorted(found), **found}


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="PREPROCESSING, metadata branch: age, sex and comorbidities checked and "
    "normalised; unknown keys or impossible values fail naming the field; absent metadata "
    "is recorded as absent.",
)
def metadata_normalized(
    context: dg.AssetExecutionContext, validated_study: dict, storage: DataStore
) -> dict:
    with stage_timer(context) as meta:
        entry = validated_study.get("metadata")
        if entry is None:
            meta["status"] = "absent"
            return {"status": "absent"}
        folder = study_folder(storage, context.partition_key)
        path = folder.path / entry["file"]
        try:
            value = normalize_metadata(formats.read_metadata(path, folder))
        except formats.StudyInputError as error:
            raise input_failure(context.partition_key, error) from error
        except MetadataError as error:
            raise input_failure(
                context.partition_key, formats.StudyInputError(path, str(error))
            ) from error
        meta.update({"status": "ok", "missing": ", ".join(value["missing"]) or "none"})
    return {"status": "ok", **value}
