"""The ECG branch: every lead cleaned with its R peaks (checkpoint), then the features."""

from pathlib import Path

import dagster as dg
import numpy as np

from cardio_assets.defs.assets.common import (
    input_failure,
    models,
    not_analysed,
    recoverable,
    stage_timer,
)
from cardio_assets.inputs import study_folder
from cardio_assets.partitions import STUDY_ASSET
from cardio_assets.resources import CardioConfig
from cardio_assets.science import ecg, formats, plots
from platform_core.datastore import DataStore
from platform_core.figures import markdown_image
from platform_core.io import read_array, write_array


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
    context: dg.AssetExecutionContext, validated_study: dict, storage: DataStore
) -> dict:
    entry = validated_study.get("ecg")
    with stage_timer(context) as meta, recoverable(context):
        if entry is None:
            meta["status"] = "absent"
            return {"status": "absent"}
        folder = study_folder(storage, context.partition_key)
        try:
            record = formats.read_ecg(folder.path / entry["file"], entry["kind"], folder)
        except formats.StudyInputError as error:
            raise input_failure(context.partition_key, error) from error
        result = ecg.preprocess(record.signal, record.sampling_hz, record.leads)
        signal = storage.value_path(context.asset_key, context.partition_key, "cleaned.npy")
        write_array(signal, result["cleaned"].astype(np.float32))
        lead = record.leads[result["rhythm_lead"]]
        meta.update(
            {
                "status": "ok",
                "rhythm_lead": lead,
                "beats": len(result["peaks"]),
                "quality": round(result["quality"], 3),
            }
        )
    return {
        "status": "ok",
        "signal_path": str(signal),
        "sampling_hz": record.sampling_hz,
        "leads": list(record.leads),
        "rhythm_lead": lead,
        "peaks": result["peaks"].tolist(),
        "quality": result["quality"],
    }


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
    with stage_timer(context) as meta, recoverable(context):
        if (carried := not_analysed(ecg_preprocessed, meta)) is not None:
            return carried
        thresholds = models(cardio)["thresholds"]["ecg"]
        cleaned = read_array(Path(ecg_preprocessed["signal_path"]))
        rhythm = cleaned[:, ecg_preprocessed["leads"].index(ecg_preprocessed["rhythm_lead"])]
        fs = ecg_preprocessed["sampling_hz"]
        result = ecg.features(
            rhythm.astype(float), np.asarray(ecg_preprocessed["peaks"]), fs, thresholds
        )
        seconds = min(len(rhythm) / fs, 10.0)
        strip = plots.ecg_strip_png(
            rhythm[: int(seconds * fs)],
            fs,
            [t for t in result["r_peak_times_s"] if t < seconds],
            ecg_preprocessed["rhythm_lead"],
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
