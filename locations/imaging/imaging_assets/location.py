"""The imaging code location, declared once (platform_core.location): a partition per plate
folder, registered from the CLI or the plate inbox and read where it lies."""

from imaging_assets.components.pipeline import load_pipelines
from imaging_assets.inputs import PLATES
from imaging_assets.partitions import plates
from imaging_assets.resources import ImagingConfig
from platform_core.inbox import MARKER
from platform_core.location import Location, Setting

INBOX = PLATES.inbox(
    "plate_inbox_sensor",
    after="keep",
    description="Registers each complete plate folder in <data root>/imaging/inbox as a plate "
    f"partition and requests its run, once per content. Complete: a {MARKER} file in the "
    "folder, or files unchanged across two ticks (never a half-copied plate). A plate folder "
    "is read where it lies; one that cannot be registered moves to inbox/rejected/ with a "
    ".error.txt saying why.",
)
# a run's steps one after another in its process (the default executor): each step already
# spreads its wells over num_workers processes
LOCATION = Location(
    "imaging",
    plates,
    item="plate",
    inbox=INBOX,
    inbox_job="imaging_plate",
    settings={"imaging": Setting(ImagingConfig, {"num_workers": "IMAGING_WORKERS"})},
    data_defs=load_pipelines,
)
