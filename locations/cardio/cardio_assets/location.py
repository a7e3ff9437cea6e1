"""The cardio code location, declared once (platform_core.location): a partition per study
folder, registered from the CLI or adopted from the study inbox."""

from cardio_assets.inputs import register_study
from cardio_assets.partitions import studies
from cardio_assets.resources import CardioConfig
from platform_core.inbox import MARKER, Inbox
from platform_core.inputs import RegisteredElsewhereError
from platform_core.keys import InvalidKeyError
from platform_core.location import Location, Setting

LOCATION = Location(
    name="cardio",
    package="cardio_assets",
    partitions=studies,
    item="study",
    flag="--study",
    inbox=Inbox(
        sensor="study_inbox_sensor",
        register=register_study,
        refused=(InvalidKeyError, RegisteredElsewhereError, OSError),
        kind="folder",
        settle_env="CARDIO_INBOX_SETTLE_SECONDS",
        settle_default=30.0,
        after="adopt",
        description="Moves each complete study folder in <data root>/cardio/inbox to "
        "inbox/processed/, registers it there as a study partition and requests its run. "
        f"Complete: a {MARKER} file in the folder, or files unchanged across two ticks. A "
        "folder that cannot be registered, or whose name was received before, moves to "
        "inbox/rejected/ with a .error.txt saying why. A tick looks only at what is new.",
    ),
    inbox_job="cardio_study",
    settings={
        "cardio": Setting(
            CardioConfig,
            {
                "max_input_mb": "CARDIO_MAX_INPUT_MB",
                "memory_limit_mb": "CARDIO_MEMORY_LIMIT_MB",
                "models_dir": "CARDIO_MODELS_DIR",
            },
        )
    },
)
