"""Turn Dagster's wrapped error records into the one line a user needs."""

from dagster._utils.error import SerializableErrorInfo


def root_cause(error: SerializableErrorInfo) -> str:
    """``ExceptionClass: message`` of the innermost cause (user code, not Dagster's wrapper)."""
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    prefix = f"{error.cls_name}: " if error.cls_name else ""
    return message if message.startswith(prefix) else prefix + message
