"""The imaging code location, declared once (platform_core.location): a partition per plate
folder, registered from the CLI or the plate inbox and read where it lies."""

from imaging_assets.inputs import register_plate
from imaging_assets.partitions import plates
from imaging_assets.resources import ImagingConfig
from platform_core.inbox import MARKER, Inbox
from platform_core.inputs import RegisteredElsewhereError
from platform_core.keys import InvalidKeyError
from platform_core.location import Location, Setting

LOCATION = Location(
    name="imaging",
    package="imaging_assets",
    partitions=plates,
    item="plate",
    flag="--plate",
    inbox=Inbox(
        sensor="plate_inbox_sensor",
        register=register_plate,
        refused=(InvalidKeyError, RegisteredElsewhereError, OSError),
        kind="folder",
        settle_env="IMAGING_INBOX_SETTLE_SECONDS",
        settle_default=30.0,
        after="keep",
        description="Registers each complete plate folder in <data root>/imaging/inbox as a "
        f"plate partition and requests its run, once per content. Complete: a {MARKER} file "
        "in the folder, or files unchanged across two ticks (never a half-copied plate). A "
        "plate folder is read where it lies; one that cannot be registered moves to "
        "inbox/rejected/ with a .error.txt saying why.",
    ),
    inbox_job="imaging_plate",
    settings={"imaging": Setting(ImagingConfig, {"num_workers": "IMAGING_WORKERS"})},
    # steps one after another in the run's process: each step already spreads its wells over
    # num_workers processes, so a process per step would only add start-up time
    executor="in_process",
)
