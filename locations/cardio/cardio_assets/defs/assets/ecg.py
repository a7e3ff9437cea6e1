"""The ECG branch: every lead cleaned with its R peaks (checkpoint), then the features."""

import dagster as dg

from cardio_assets import stage_work
from cardio_assets.defs.assets.common import (
    in_worker,
    models,
    not_analysed,
    recoverable,
    stage_timer,
)
from cardio_assets.inputs import study_folder
from cardio_assets.partitions import STUDY_ASSET
from cardio_assets.resources import CardioConfig
from platform_core.datastore import DataStore
from platform_core.figures import markdown_image
from platform_core.io import write_array


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json", "numpy"},
    description="PREPROCESSING, ECG branch: every lead cleaned (baseline wander, mains hum, "
    "noise; neurokit2), the rhythm lead (II where present), its R peaks and their quality "
    "(agreement with a second detector, sleepecg) the quality gate checks. The cleaned "
    "leads are kept as an array beside the record.",
)
def ecg_preprocessed(
    context: dg.AssetExecutionContext,
    validated_study: dict,
    cardio: CardioConfig,
    storage: DataStore,
) -> dict:
    entry = validated_study.get("ecg")
    with stage_timer(context) as meta, recoverable(context, cardio):
        if entry is None:
            meta["status"] = "absent"
            return {"status": "absent"}
        study = context.partition_key
        signal = storage.value_path(context.asset_key, study, "cleaned.npy")
        value, cleaned = in_worker(
            context, cardio, stage_work.ecg_preprocess, study_folder(storage, study), entry
        )
        write_array(signal, cleaned)
        value["signal_path"] = str(signal)
        meta.update(
            {
                "status": "ok",
                "rhythm_lead": value["rhythm_lead"],
                "beats": len(value["peaks"]),
                "quality": round(value["quality"], 3),
            }
        )
    return value


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="ANALYSIS, ECG: HR, SDNN, RMSSD, pNN50 over normal beats, QT with QTc "
    "(Bazett, Fridericia), ectopic beats, brady/tachycardia and 'irregular rhythm, review' "
    "(never a diagnosis of AF). The UI shows the strip with its R peaks.",
)
def ecg_features(
    context: dg.AssetExecutionContext, ecg_preprocessed: dict, cardio: CardioConfig
) -> dict:
    with stage_timer(context) as meta, recoverable(context, cardio):
        if (carried := not_analysed(ecg_preprocessed, meta)) is not None:
            return carried
        thresholds = models(cardio)["thresholds"]["ecg"]
        result, strip = in_worker(
            context, cardio, stage_work.ecg_analyse, ecg_preprocessed, thresholds
        )
        meta.update(
            {
                "heart_rate_bpm": round(result["heart_rate_bpm"], 1),
                "sdnn_ms": round(result["sdnn_ms"], 1),
                "rmssd_ms": round(result["rmssd_ms"], 1),
                "qtc_bazett_ms": round(result["qtc_bazett_ms"], 1),
                "ectopic_beats": result["ectopic_beats"],
                "detector_agreement_f1": round(ecg_preprocessed["quality"], 3),
                "flags": ", ".join(result["flags"]) or "none",
                "strip": dg.MetadataValue.md(markdown_image(strip, "ECG strip, R peaks")),
            }
        )
    return {
        "status": "ok",
        "rhythm_lead": ecg_preprocessed["rhythm_lead"],
        "quality": ecg_preprocessed["quality"],
        **result,
    }
