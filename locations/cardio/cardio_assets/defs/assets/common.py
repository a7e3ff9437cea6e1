"""What every cardio asset shares: hard stops, the seed's retry table, model loading and the
stage timing recorded with each materialization."""

import errno
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import dagster as dg

from cardio_assets.resources import CardioConfig
from cardio_assets.science.formats import StudyInputError
from cardio_assets.science.models import ModelCorruptedError, ModelLoadError, load_models
from cardio_assets.stage_work import HardStop, HardStopError
from cardio_assets.stage_worker import run_stage

HARD_STOPS: dict[str, str] = {
    "E_HARD_001": "no valid modality",
    "E_HARD_002": "memory limit exceeded",
    "E_HARD_003": "model file corrupted",
    "E_HARD_004": "input size limit exceeded",
}
# The seed's retry table: failure -> (retries, first wait in seconds, exponential backoff);
# a timeout's first wait is the settings' ``timeout_retry_wait_s``.
RETRIES: dict[type[BaseException], tuple[int, float, bool]] = {
    TimeoutError: (3, 1.0, True),
    MemoryError: (2, 0.0, False),
    ModelLoadError: (2, 0.5, False),
    ConnectionError: (3, 2.0, False),  # transient network: fixed delay
}
# An OSError with one of these codes is a transient network failure too (a study folder on
# a network mount that went away for a moment).
NETWORK_ERRNOS = frozenset(
    {errno.ESTALE, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENETDOWN, errno.ENETUNREACH}
)
Result = TypeVar("Result")


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


def retry_rule(error: BaseException) -> tuple[int, float, bool] | None:
    """The seed's rule for ``error`` (retries, first wait s, exponential), None: not retried."""
    if isinstance(error, OSError) and error.errno in NETWORK_ERRNOS:
        return RETRIES[ConnectionError]
    return next((v for k, v in RETRIES.items() if isinstance(error, k)), None)


@contextmanager
def recoverable(context: dg.AssetExecutionContext, cardio: CardioConfig) -> Iterator[None]:
    """Turns the seed's recoverable failures into Dagster retries of this step: timeout x3
    with exponential backoff, memory error x2 (the step halves its batch by retry number),
    model load failure x2 (the files are reloaded), transient network failure x3 with a
    fixed delay. When the retries are spent the step fails with the last error's message,
    its type and the retries made (a ``dg.Failure``: the CLI and the UI show that line)."""
    try:
        yield
    except Exception as error:
        rule = retry_rule(error)
        if rule is None:
            raise
        retries, wait, exponential = rule
        if isinstance(error, TimeoutError):
            wait = cardio.timeout_retry_wait_s
        if context.retry_number >= retries:
            raise dg.Failure(
                description=f"{type(error).__name__}: {error} (after {retries} retries)",
                metadata={"error": type(error).__name__, "retries": retries},
                allow_retries=False,
            ) from error
        seconds = wait * (2**context.retry_number if exponential else 1)
        context.log.warning(f"{type(error).__name__}: {error}; retry {context.retry_number + 1}")
        raise dg.RetryRequested(max_retries=retries, seconds_to_wait=seconds) from error


def in_worker(
    context: dg.AssetExecutionContext,
    cardio: CardioConfig,
    function: Callable[..., Result],
    *args: Any,
) -> Result:
    """``function(*args)``, this stage's work (``stage_work``), under its time limit in a
    worker process (``stage_worker``): StageTimeout past it; a study file that cannot be
    used and a hard stop fail the study, not retried."""
    stage, study = context.asset_key.to_user_string(), context.partition_key
    try:
        return run_stage(stage, study, cardio.time_limit_s(stage), function, *args)
    except StudyInputError as error:
        raise input_failure(study, error) from error
    except HardStopError as error:
        raise hard_stop(error.code, f"study {study}: {error.message}") from error


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
