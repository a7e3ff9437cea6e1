"""Receipt, validation and metadata: what the study folder holds, whether it can be analysed,
and the clinical metadata normalised. Every file is read through the registered study's
folder (``study_folder``): a study from the inbox only inside it."""

import dagster as dg

from cardio_assets import stage_work
from cardio_assets.defs.assets.common import hard_stop, in_worker, recoverable, stage_timer
from cardio_assets.inputs import study_folder
from cardio_assets.partitions import STUDY_ASSET
from cardio_assets.resources import CardioConfig
from platform_core.datastore import DataStore
from platform_core.inbox import MARKER
from platform_core.keys import InvalidKeyError


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="RECEIPT: every file of the study folder with its size and sha256, before "
    "anything is parsed. A file over the input size limit stops the study here (E_HARD_004), "
    "before it is read; so does a file of an inbox study that leads out of its folder. A "
    "pipe, socket or device where a file is expected is refused, naming it (never opened).",
)
def study_receipt(
    context: dg.AssetExecutionContext, cardio: CardioConfig, storage: DataStore
) -> dict:
    study = context.partition_key
    with stage_timer(context) as meta, recoverable(context, cardio):
        try:
            folder = study_folder(storage, study)
        except (FileNotFoundError, InvalidKeyError, PermissionError) as error:
            raise dg.Failure(f"study {study}: {error}", allow_retries=False) from error
        files = in_worker(
            context, cardio, stage_work.receive_all, folder, cardio.max_input_mb, MARKER
        )
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
    with stage_timer(context) as meta, recoverable(context, cardio):
        folder = study_folder(storage, study)
        found, decoded = in_worker(
            context, cardio, stage_work.validate, folder, study_receipt["files"]
        )
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
    context: dg.AssetExecutionContext,
    validated_study: dict,
    cardio: CardioConfig,
    storage: DataStore,
) -> dict:
    with stage_timer(context) as meta, recoverable(context, cardio):
        entry = validated_study.get("metadata")
        if entry is None:
            meta["status"] = "absent"
            return {"status": "absent"}
        study = context.partition_key
        folder = study_folder(storage, study)
        value = in_worker(context, cardio, stage_work.normalize, folder, entry["file"])
        meta.update({"status": "ok", "missing": ", ".join(value["missing"]) or "none"})
    return {"status": "ok", **value}
