"""Turn Dagster's wrapped error records into the one line a user needs."""

from typing import Protocol


class ErrorInfo(Protocol):
    """What a step failure's error record offers (Dagster's ``SerializableErrorInfo``)."""

    message: str
    cls_name: str | None
    cause: "ErrorInfo | None"


def root_cause(error: ErrorInfo) -> str:
    """``ExceptionClass: message`` of the innermost cause (user code, not Dagster's wrapper)."""
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    prefix = f"{error.cls_name}: " if error.cls_name else ""
    return message if message.startswith(prefix) else prefix + message
