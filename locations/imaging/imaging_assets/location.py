"""The imaging code location, declared once (platform_core.location): a partition per plate
folder, registered from the CLI or the plate inbox and read where it lies; its pipelines
built from their YAML files (components/pipeline.py)."""

from pathlib import Path

import dagster as dg

from imaging_assets.components.pipeline import load_pipelines, pipelines_of
from imaging_assets.engine.spec import PipelineError
from imaging_assets.inputs import PLATES
from imaging_assets.partitions import plates
from imaging_assets.resources import ImagingConfig
from platform_core.confine import confine, open_confined
from platform_core.datastore import DataStore
from platform_core.inbox import MARKER, Inbox, Registered
from platform_core.location import Location, Setting

PLATE_JOB = "imaging_plate"  # the shipped stitch pipeline: manifest ... stitched plate, QC
PIPELINE_FILE = "pipeline.txt"  # in a dropped plate: the name of the pipeline it runs
MAX_PIPELINE_NAME_BYTES = 256


def chosen_pipeline(store: DataStore, folder: Path, loaded: dict[str, dict]) -> str:
    """The job a dropped plate runs: the loaded pipeline its ``pipeline.txt`` names (read
    inside the plate folder, at most 256 bytes), else the stitch pipeline."""
    if not (folder / PIPELINE_FILE).exists():
        return PLATE_JOB
    plate = confine(folder, [store.inbox().resolve()], "plate folder")
    with open_confined(plate / PIPELINE_FILE, [plate], PIPELINE_FILE) as handle:  # in the plate
        text = handle.read(MAX_PIPELINE_NAME_BYTES + 1)
    name = text.decode(errors="replace").strip()
    if name == "stitch":
        return PLATE_JOB
    if name not in loaded:
        raise PipelineError(
            f"{folder / PIPELINE_FILE}: names {name[:80]!r}, which is not a loaded pipeline "
            f"(loaded: stitch, {', '.join(sorted(loaded)) or 'no other'}); a dropped file "
            "names a pipeline, it never defines one"
        )
    return name


def plate_inbox(loaded: dg.Definitions) -> Inbox:
    """The plate inbox over every loaded pipeline (a plate's ``pipeline.txt`` chooses)."""
    pipelines = pipelines_of(loaded)
    base = PLATES.inbox(
        "plate_inbox_sensor",
        after="keep",
        description="Registers each complete plate folder in <data root>/imaging/inbox as a "
        f"plate partition and requests its run, once per content: the stitch pipeline, or the "
        f"loaded pipeline its {PIPELINE_FILE} names. Complete: a {MARKER} file in the folder, "
        "or files unchanged across two ticks (never a half-copied plate). A plate folder is "
        "read where it lies; one that cannot be registered moves to inbox/rejected/ with a "
        ".error.txt saying why.",
    )

    def register(store: DataStore, folder: Path) -> Registered:
        job = chosen_pipeline(store, folder, pipelines)  # refused before it is registered
        return Registered(PLATES.register_dropped(store, folder), plates, job)

    return Inbox(
        base.sensor,
        register,
        (*base.refused, PipelineError),
        base.kind,
        after=base.after,
        description=base.description,
    )


# a run's steps one after another in its process (the default executor): each step already
# spreads its wells over num_workers processes
LOCATION = Location(
    "imaging",
    plates,
    item="plate",
    inbox=plate_inbox,
    settings={"imaging": Setting(ImagingConfig, {"num_workers": "IMAGING_WORKERS"})},
    data_defs=load_pipelines,
)
