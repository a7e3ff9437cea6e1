"""The cardio code location, declared once (platform_core.location): a partition per study
folder, registered from the CLI or adopted from the study inbox."""

from cardio_assets.inputs import STUDIES
from cardio_assets.partitions import studies
from cardio_assets.resources import CardioConfig
from platform_core.inbox import MARKER
from platform_core.location import Location, Setting

INBOX = STUDIES.inbox(
    "study_inbox_sensor",
    after="adopt",
    description="Moves each complete study folder in <data root>/cardio/inbox to "
    "inbox/processed/, registers it there as a study partition and requests its run. "
    f"Complete: a {MARKER} file in the folder, or files unchanged across two ticks. A folder "
    "that cannot be registered, or whose name was received before, moves to inbox/rejected/ "
    "with a .error.txt saying why. A tick looks only at what is new.",
)
LIMITS = {
    "max_input_mb": "CARDIO_MAX_INPUT_MB",
    "memory_limit_mb": "CARDIO_MEMORY_LIMIT_MB",
    "models_dir": "CARDIO_MODELS_DIR",
    "stage_timeout_s": "CARDIO_STAGE_TIMEOUT_S",
}
LOCATION = Location(
    "cardio",
    studies,
    item="study",
    inbox=INBOX,
    inbox_job="cardio_study",
    settings={"cardio": Setting(CardioConfig, LIMITS)},
)
