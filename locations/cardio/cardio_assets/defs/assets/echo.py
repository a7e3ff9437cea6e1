"""The echo branch: the cine decoded in batches (checkpoint), the LV found per frame
(checkpoint), then its function. A detection that fails or cannot be trusted degrades the
study to ECG-only with the reason; it never looks like a complete analysis."""

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
    description="PREPROCESSING, echo branch: the cine decoded in batches of frames, grey, "
    "cropped to its ultrasound region, downsampled; frame quality for the gate. Batches are as "
    "large as the batch memory limit allows; a MemoryError is retried with half the frames "
    "(twice).",
)
def echo_preprocessed(
    context: dg.AssetExecutionContext,
    validated_study: dict,
    cardio: CardioConfig,
    storage: DataStore,
) -> dict:
    entry = validated_study.get("echo")
    with stage_timer(context) as meta, recoverable(context, cardio):
        if entry is None:
            meta["status"] = "absent"
            return {"status": "absent"}
        study = context.partition_key
        value, frames, fan = in_worker(
            context,
            cardio,
            stage_work.echo_preprocess,
            study_folder(storage, study),
            entry["file"],
            (cardio.echo_batch_frames, cardio.max_batch_mb, context.retry_number),
        )
        for name, array in (("frames", frames), ("fan", fan)):
            path = storage.value_path(context.asset_key, study, f"{name}.npy")
            write_array(path, array)
            value[f"{name}_path"] = str(path)
        meta.update(
            {
                "status": "ok",
                "frames": value.pop("frames"),
                "batch_frames": value.pop("batch_frames"),
                **{k: round(v, 3) for k, v in value["quality"].items()},
            }
        )
    return value


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json", "numpy"},
    description="DETECTION (echo only): the LV cavity per frame and the detection's "
    "confidence. A detection that fails is recorded with its reason (the study goes on "
    "ECG-only).",
)
def echo_lv_detection(
    context: dg.AssetExecutionContext,
    echo_preprocessed: dict,
    cardio: CardioConfig,
    storage: DataStore,
) -> dict:
    with stage_timer(context) as meta, recoverable(context, cardio):
        if (carried := not_analysed(echo_preprocessed, meta)) is not None:
            return carried
        template = models(cardio)["lv_template"]
        value, masks = in_worker(context, cardio, stage_work.detect, echo_preprocessed, template)
        if masks is None:
            context.log.warning(value["reason"])
            meta.update(value)
            return value
        path = storage.value_path(context.asset_key, context.partition_key, "masks.npy")
        write_array(path, masks)
        value["masks_path"] = str(path)
        meta.update(
            {
                "status": "ok",
                "confidence": round(value["confidence"], 3),
                "reason": value["reason"] or "none",
            }
        )
    return value


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="ANALYSIS, echo: ED / ES frames, EDV, ESV and EF (area-length), cycle length "
    "and six-sector wall motion. Skipped, with the reason, when the detection's confidence "
    "is low or the cine holds no full cycle. The UI shows the LV volume curve.",
)
def echo_function(
    context: dg.AssetExecutionContext,
    echo_lv_detection: dict,
    echo_preprocessed: dict,
    cardio: CardioConfig,
) -> dict:
    with stage_timer(context) as meta, recoverable(context, cardio):
        if (carried := not_analysed(echo_lv_detection, meta)) is not None:
            return carried
        thresholds = models(cardio)["thresholds"]["echo"]
        value = in_worker(
            context,
            cardio,
            stage_work.lv_function,
            echo_lv_detection,
            echo_preprocessed,
            thresholds,
        )
        if value["status"] == "skipped":
            meta.update(value)
            return value
        png = value.pop("curve_png")
        meta.update(
            {
                "ef_percent": round(value["ef_percent"], 1),
                "cycle_length_s": round(value["cycle_length_s"], 3),
                "ed_frame": value["ed_frame"],
                "es_frame": value["es_frame"],
                "wall_motion": ", ".join(
                    f"{s['sector']}:{s['motion']}" for s in value["wall_motion"]
                ),
                "lv_volume_curve": dg.MetadataValue.md(markdown_image(png, "LV volume")),
            }
        )
    return value
