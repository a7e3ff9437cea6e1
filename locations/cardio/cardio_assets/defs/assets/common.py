"""What every cardio asset shares: hard stops, the seed's retry table, model loading and the
stage timing recorded with each materialization."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import dagster as dg

from cardio_assets.resources import CardioConfig
from cardio_assets.science.formats import StudyInputError
from cardio_assets.science.models import ModelCorruptedError, ModelLoadError, load_models

HardStop = Literal["E_HARD_001", "E_HARD_002", "E_HARD_003", "E_HARD_004"]
HARD_STOPS: dict[str, str] = {
    "E_HARD_001": "no valid modality",
    "E_HARD_002": "memory limit exceeded",
    "E_HARD_003": "model file corrupted",
    "E_HARD_004": "input size limit exceeded",
}
# The seed's retry table: failure -> (retries, first wait in seconds, exponential backoff).
RETRIES: dict[type[BaseException], tuple[int, float, bool]] = {
    TimeoutError: (3, 1.0, True),
    MemoryError: (2, 0.0, False),
    ModelLoadError: (2, 0.5, False),
}


def hard_stop(code: HardStop, message: str) -> dg.Failure:
    """A failure that is never retried, its code in the metadata and the message."""
    return dg.Failure(
        description=f"{code} ({HARD_STOPS[code]}): {message}",
        metadata={"code": code, "reason": HARD_STOPS[code]},
        allow_retries=False,
    )


def input_failure(study: str, error: StudyInputError) -> dg.Failure:
    """A study file that cannot be used: the file and the reason, not retried."""
    return dg.Failure(
        description=f"study {study}: {error}",
        metadata={"file": error.path.name, "reason": error.reason},
        allow_retries=False,
    )


@contextmanager
def recoverable(context: dg.AssetExecutionContext) -> Iterator[None]:
    """Turns the seed's recoverable failures into Dagster retries of this step: timeout x3
    with exponential backoff, memory error x2 (the step halves its batch by retry number),
    model load failure x2 (the files are reloaded)."""
    try:
        yield
    except tuple(RETRIES) as error:
        retries, wait, exponential = next(v for k, v in RETRIES.items() if isinstance(error, k))
        seconds = wait * (2**context.retry_number if exponential else 1)
        context.log.warning(f"{type(error).__name__}: {error}; retry {context.retry_number + 1}")
        raise dg.RetryRequested(max_retries=retries, seconds_to_wait=seconds) from error


def models(cardio: CardioConfig) -> dict[str, dict]:
    """The thresholds and LV template, checked against their manifest before use: a corrupted
    file is E_HARD_003; an unreadable one is retried (``recoverable``)."""
    try:
        return load_models(cardio.models_path())
    except ModelCorruptedError as error:
        raise hard_stop("E_HARD_003", str(error)) from error


@contextmanager
def stage_timer(context: dg.AssetExecutionContext) -> Iterator[dict[str, Any]]:
    """Collects output metadata; adds the stage's compute time in ms (``elapsed_ms``, which the
    report's stage timings read)."""
    metadata: dict[str, Any] = {}
    started = time.perf_counter()
    yield metadata
    metadata["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    context.add_output_metadata(metadata)


def not_analysed(upstream: dict, meta: dict[str, Any]) -> dict | None:
    """When the upstream branch record is not ``ok`` (absent, failed, skipped): its status and
    reason, carried on unchanged (and into this stage's metadata); else None."""
    if upstream["status"] == "ok":
        return None
    carried = {k: v for k, v in upstream.items() if k in ("status", "reason")}
    meta.update(carried)
    return carried
