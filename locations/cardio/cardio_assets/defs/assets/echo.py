"""The echo branch: the cine decoded in batches (checkpoint), the LV found per frame
(checkpoint), then its function. A detection that fails or cannot be trusted degrades the
study to ECG-only with the reason; it never looks like a complete analysis."""

from pathlib import Path
from typing import BinaryIO

import dagster as dg
import numpy as np
import pydicom
from pydicom.pixels import iter_pixels

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
from cardio_assets.science import echo, formats, plots
from platform_core.datastore import DataStore
from platform_core.figures import markdown_image
from platform_core.io import read_array, write_array


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
    with stage_timer(context) as meta, recoverable(context):
        if entry is None:
            meta["status"] = "absent"
            return {"status": "absent"}
        folder = study_folder(storage, context.partition_key)
        path = folder.path / entry["file"]
        try:
            header = formats.echo_header(path, folder)
        except formats.StudyInputError as error:
            raise input_failure(context.partition_key, error) from error
        # as many frames as fit the batch memory limit (at most echo_batch_frames), halved
        # on each retry after a MemoryError
        fits = max(1, int(cardio.max_batch_mb * 1e6 // _frame_bytes(header)))
        batch = max(1, min(cardio.echo_batch_frames, fits) // 2**context.retry_number)
        try:
            with formats.open_study_file(path, folder) as source:
                frames = _decode(source, header, batch, cardio.max_batch_mb)
        except formats.StudyInputError as error:  # a file it may not read (before decoding)
            raise input_failure(context.partition_key, error) from error
        except (ValueError, RuntimeError, pydicom.errors.InvalidDicomError) as error:
            raise dg.Failure(
                f"study {context.partition_key}: {path.name}: pixel data cannot "
                f"be decoded ({error})",
                allow_retries=False,
            ) from error
        scale = frames.shape[2] / (
            header.region[2] - header.region[0] + 1 if header.region else header.columns
        )
        fan = echo.fan_mask(frames)
        quality = echo.frame_quality(frames, fan)
        store = storage.value_path(context.asset_key, context.partition_key, "frames.npy")
        fan_store = storage.value_path(context.asset_key, context.partition_key, "fan.npy")
        write_array(store, frames.astype(np.float32))
        write_array(fan_store, fan)
        meta.update(
            {
                "status": "ok",
                "frames": len(frames),
                "batch_frames": batch,
                **{k: round(v, 3) for k, v in quality.items()},
            }
        )
    return {
        "status": "ok",
        "frames_path": str(store),
        "fan_path": str(fan_store),
        "frame_time_ms": header.frame_time_ms,
        "pixel_cm": header.pixel_spacing_cm / scale if header.pixel_spacing_cm else 0.0,
        "quality": quality,
    }


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
    with stage_timer(context) as meta, recoverable(context):
        if (carried := not_analysed(echo_preprocessed, meta)) is not None:
            return carried
        template = models(cardio)["lv_template"]
        frames = read_array(Path(echo_preprocessed["frames_path"]))
        fan = read_array(Path(echo_preprocessed["fan_path"]))
        try:
            found = echo.segment_lv(frames, fan, template)
        except (ValueError, IndexError) as error:  # the echo model failed on this cine
            context.log.warning(f"LV detection failed: {error}")
            meta.update({"status": "failed", "reason": str(error)})
            return {"status": "failed", "reason": f"LV detection failed: {error}"}
        masks = storage.value_path(context.asset_key, context.partition_key, "masks.npy")
        write_array(masks, found.masks)
        meta.update(
            {
                "status": "ok",
                "confidence": round(found.confidence, 3),
                "reason": found.reason or "none",
            }
        )
    return {
        "status": "ok",
        "masks_path": str(masks),
        "areas_px": found.areas_px.tolist(),
        "long_axis_px": found.long_axis_px.tolist(),
        "confidence": found.confidence,
        "reason": found.reason,
    }


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
    with stage_timer(context) as meta, recoverable(context):
        if (carried := not_analysed(echo_lv_detection, meta)) is not None:
            return carried
        thresholds = models(cardio)["thresholds"]["echo"]
        if echo_lv_detection["confidence"] < thresholds["min_detection_confidence"]:
            reason = (
                f"low-confidence LV detection ({echo_lv_detection['confidence']:.2f} < "
                f"{thresholds['min_detection_confidence']}): "
                f"{echo_lv_detection['reason']}"
            )
            meta.update({"status": "skipped", "reason": reason})
            return {"status": "skipped", "reason": reason}
        found = echo.LvDetection(
            read_array(Path(echo_lv_detection["masks_path"])),
            np.asarray(echo_lv_detection["areas_px"]),
            np.asarray(echo_lv_detection["long_axis_px"]),
            echo_lv_detection["confidence"],
            echo_lv_detection["reason"],
        )
        pixel_cm = echo_preprocessed["pixel_cm"]
        result = echo.function(
            found, echo_preprocessed["frame_time_ms"], pixel_cm, tuple(thresholds["cycle_bounds_s"])
        )
        if "skipped" in result:
            meta.update({"status": "skipped", "reason": result["skipped"]})
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
            echo_preprocessed["frame_time_ms"],
            result["ed_frame"],
            result["es_frame"],
            "mL" if pixel_cm else "pixel units",
        )
        meta.update(
            {
                "ef_percent": round(result["ef_percent"], 1),
                "cycle_length_s": round(result["cycle_length_s"], 3),
                "ed_frame": result["ed_frame"],
                "es_frame": result["es_frame"],
                "wall_motion": ", ".join(f"{s['sector']}:{s['motion']}" for s in sectors),
                "lv_volume_curve": dg.MetadataValue.md(markdown_image(png, "LV volume")),
            }
        )
    return {"status": "ok", "confidence": found.confidence, **result, "wall_motion": sectors}
