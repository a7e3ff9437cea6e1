"""Turn Dagster's wrapped error records into the one line a user needs."""

from typing import Protocol


class CliError(Exception):
    """A user-facing error of a command: printed as one line, exit code 2 (bad usage or
    input). Here, not in platform_core.cli, so that helpers a CLI shares with the graph side
    (date ranges, partition keys) can raise it."""


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
