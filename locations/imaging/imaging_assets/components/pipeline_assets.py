"""A compiled pipeline as Dagster definitions: one plate-partitioned multi-asset (an asset
per materialized step and the last, plus ``<pipeline>/wells``, the per-well summary), its
checks and its job (components/pipeline_run.py runs it)."""

from collections.abc import Mapping

import dagster as dg
import pandas as pd

from imaging_assets.components.pipeline_run import execute, step_key, summary_key
from imaging_assets.engine.compile import CompiledPipeline, CompiledStep
from imaging_assets.partitions import plates
from imaging_assets.resources import ImagingConfig
from platform_core.datastore import DataStore

PIPELINE_METADATA = "imaging/pipeline"
UPSTREAM = ("plate_manifest", "plate_validation")


def build_pipeline_defs(
    pipeline: CompiledPipeline, known: Mapping[str, CompiledStep]
) -> dg.Definitions:
    """The pipeline's multi-asset, checks and job; ``known``: every loaded step by key (the
    other pipelines' steps it reads)."""
    outputs = list(pipeline.outputs)
    external = [known[k] for k in pipeline.external]
    summary = summary_key(pipeline)
    described = [
        (
            step_key(s),
            f"{s.output} of step {s.name} ({s.functions})"
            + (", as OME-Zarr: a table of the wells written" if s.output != "table" else ""),
            "zarr" if s.output != "table" else "pandas",
        )
        for s in outputs
    ] + [
        (
            summary,
            "Per well: status (ran / reused / failed), error, object count, mean area and "
            "intensity per channel; a plate heatmap of counts in the metadata.",
            "pandas",
        )
    ]
    outs = {
        key.to_python_identifier(): dg.AssetOut(key=key, description=text, kinds={kind})
        for key, text, kind in described
    }

    @dg.multi_asset(
        name=f"{pipeline.name}__steps",  # the op; the job has the pipeline's name
        outs=outs,
        deps=[step_key(s) for s in external],
        partitions_def=plates,
        group_name=pipeline.name,
        ins={name: dg.AssetIn(name) for name in UPSTREAM},
        description=pipeline.description or f"The imaging pipeline {pipeline.name}",
    )
    def run_pipeline(
        context: dg.AssetExecutionContext,
        imaging: ImagingConfig,
        storage: DataStore,
        plate_manifest: pd.DataFrame,
        plate_validation: pd.DataFrame,
    ):
        yield from execute(
            context, pipeline, external, imaging, storage, plate_manifest, plate_validation
        )

    checks = _checks(summary)
    job = dg.define_asset_job(
        pipeline.name,
        selection=dg.AssetSelection.groups(pipeline.name) | dg.AssetSelection.assets(*UPSTREAM),
        description=pipeline.description or f"the imaging pipeline {pipeline.name}",
        metadata={
            PIPELINE_METADATA: {
                "source": pipeline.source,
                "steps": [s.name for s in pipeline.steps],
            }
        },
    )
    return dg.Definitions(assets=[run_pipeline], asset_checks=checks, jobs=[job])


def _checks(summary_key: dg.AssetKey) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset=summary_key,
        name="no_well_failed",
        partitions_def=plates,
        description="Every well of the plate ran or was reused; none failed.",
    )
    def no_well_failed(value: pd.DataFrame) -> dg.AssetCheckResult:
        failed = value[value["status"] == "failed"]
        return dg.AssetCheckResult(
            passed=failed.empty, metadata={"failed_wells": ", ".join(failed["well"])}
        )

    @dg.asset_check(
        asset=summary_key,
        name="every_well_has_objects",
        partitions_def=plates,
        description="Every well that ran holds objects (an empty well is worth a look).",
    )
    def every_well_has_objects(value: pd.DataFrame) -> dg.AssetCheckResult:
        measured = value[value["status"] != "failed"]
        empty = measured[measured["objects"].fillna(0) == 0] if "objects" in measured else measured
        return dg.AssetCheckResult(
            passed=bool(empty.empty or measured["objects"].isna().all()),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"wells_without_objects": ", ".join(empty["well"])},
        )

    return [no_well_failed, every_well_has_objects]
