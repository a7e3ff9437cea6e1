"""Imaging pipelines of function steps from Python, with the same meaning as a YAML file.
The user's side, like the CLI: the graph side (definitions, daemon) builds pipelines from
their YAML files through imaging_assets.engine and never imports this module::

    from imaging_assets.pipelines import FunctionStep, Pipeline, run

    count = Pipeline(
        [
            FunctionStep("illumination", "flat_field", scope="plate"),
            FunctionStep("nuclei", "segment_nuclei", {"channel": 1}, materialize=True),
            FunctionStep("cells", "measure_objects", {"labels": "nuclei"}, reads=["nuclei"]),
        ],
        name="my_count",
    )
    summaries = run(pipelines=[count], plate="path/to/plate")

``run`` compiles the pipelines in this process (your own step functions may come from any
module), registers the plate, and runs each pipeline's job on it in order, recorded in the
instance at ``$DAGSTER_HOME`` (the runs show in the web UI). It returns each pipeline's
per-well summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pandas as pd

from imaging_assets.engine import compile as engine
from imaging_assets.engine.compile import CompiledPipeline, compile_pipeline
from imaging_assets.engine.spec import FunctionStep, Pipeline, PipelineError, read_pipeline_file

__all__ = [
    "FunctionStep",
    "Pipeline",
    "PipelineError",
    "compile_pipeline",
    "compile_pipelines",
    "definitions_with",
    "read_pipeline_file",
    "run",
]


def compile_pipelines(
    pipelines: Sequence[Pipeline], user_code: bool = True
) -> list[CompiledPipeline]:
    """Compile ``pipelines`` in order (each may read the materialized steps of those before
    it): PipelineError naming the step when one cannot run. Your own process: any module."""
    return engine.compile_pipelines(pipelines, user_code)


def definitions_with(pipelines: Sequence[Pipeline]) -> dg.Definitions:
    """The imaging location's Definitions with ``pipelines`` added as the user's own code
    (each replaces a loaded pipeline of its name); refused ones raise PipelineError."""
    from imaging_assets.components.pipeline import load_pipelines, refused_pipelines
    from imaging_assets.location import LOCATION

    own = tuple(pipelines)
    defs = replace(LOCATION, data_defs=lambda: load_pipelines(own)).definitions()
    refused = refused_pipelines(defs)
    for pipeline in own:
        if pipeline.where in refused:
            raise PipelineError(refused[pipeline.where])
    return defs


def run(
    pipelines: Sequence[Pipeline],
    plate: str | Path,
    wells: Sequence[str] = (),
    workers: int = 0,
) -> dict[str, pd.DataFrame]:
    """Run ``pipelines`` in order on ``plate`` (a registered plate's name, or a plate folder,
    registered as needed); each pipeline's per-well summary by name. A failed run raises
    ``dagster.DagsterExecutionStepExecutionError`` naming the step and well."""
    from imaging_assets.inputs import register_plate
    from imaging_assets.partitions import plates
    from platform_core import cli
    from platform_core.confine import user_process

    with user_process():
        defs = definitions_with(pipelines)  # refused here, before any run
        instance = cli.instance()
        with dg.build_resources({"storage": defs.resources["storage"]}) as built:
            store = built.storage
        folder = Path(plate)
        key = register_plate(store, folder) if folder.is_dir() else str(plate)
        instance.add_dynamic_partitions(plates.name, [key])
        config = {"wells": list(wells), "num_workers": workers}
        summaries = {}
        for pipeline in pipelines:
            job = defs.resolve_job_def(pipeline.name)
            job.execute_in_process(
                instance=instance,
                partition_key=key,
                run_config={
                    "resources": {"imaging": {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                },
            )
            summaries[pipeline.name] = defs.load_asset_value(
                [pipeline.name, "wells"], partition_key=key, instance=instance
            )
    return summaries
