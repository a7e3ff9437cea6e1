"""A compiled pipeline as Dagster definitions: one plate-partitioned multi-asset (an asset
per materialized step and the last, plus ``<pipeline>/wells``, the per-well summary), its
checks and its job. Wells are reused by fingerprint (code, kwargs, inputs), so a re-run or
``resume`` redoes only wells that failed or changed."""

import hashlib
import json
from collections.abc import Mapping

import dagster as dg
import pandas as pd

from imaging_assets.defs.assets import survey
from imaging_assets.defs.assets.common import fail_past_threshold, selected_wells, table_md
from imaging_assets.engine.apply import PlateContext
from imaging_assets.engine.compile import CompiledPipeline, CompiledStep
from imaging_assets.engine.plate import StoredStep, run_plate
from imaging_assets.engine.summary import plate_heatmap_png, well_summary
from imaging_assets.inputs import plate_folder
from imaging_assets.partitions import plates
from imaging_assets.resources import ImagingConfig
from imaging_assets.science import omezarr
from imaging_assets.science.layouts import split_well
from platform_core.datastore import DataStore
from platform_core.figures import markdown_image
from platform_core.io import stored_partition

PIPELINE_METADATA = "imaging/pipeline"
SUMMARY = "wells"
UPSTREAM = ("plate_manifest", "plate_validation")


def step_key(step: CompiledStep) -> dg.AssetKey:
    return dg.AssetKey([step.pipeline, step.name])


def stored_steps(
    storage: DataStore, plate: str, steps: list[CompiledStep]
) -> dict[str, StoredStep]:
    """Where each image or labels step among ``steps`` keeps its OME-Zarr plate."""
    return {
        s.key: StoredStep(storage.value_path(step_key(s), plate, "ome.zarr"), s.output, s.name)
        for s in steps
        if s.output != "table"
    }


def _plate_context(
    manifest: pd.DataFrame, header: survey.TileHeader, imaging: ImagingConfig
) -> PlateContext:
    names = (
        manifest.drop_duplicates("channel").set_index("channel")["channel_name"].to_dict()
        if "channel_name" in manifest
        else {}
    )
    pixel = manifest["pixel_size_um"].iloc[0]
    grid = manifest.drop_duplicates("site")[["site", "grid_row", "grid_col"]].sort_values("site")
    return PlateContext(
        {int(k): str(v) for k, v in names.items()},
        None if pd.isna(pixel) else float(pixel),
        grid.reset_index(drop=True),
        survey.stated_step(manifest, header, imaging),
    )


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def build_pipeline_defs(
    pipeline: CompiledPipeline, known: Mapping[str, CompiledStep]
) -> dg.Definitions:
    """The pipeline's multi-asset, checks and job; ``known``: every loaded step by key (the
    other pipelines' steps it reads)."""
    outputs = list(pipeline.outputs)
    external = [known[k] for k in pipeline.external]
    summary_key = dg.AssetKey([pipeline.name, SUMMARY])
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
            summary_key,
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
        plate = context.partition_key
        valid = plate_validation.loc[plate_validation["status"] == "ok", "well"].tolist()
        selected = set(selected_wells(valid, imaging.wells))
        header = survey.validated_header(plate_validation)
        opener = plate_folder(storage, plate).open
        wells = {w: survey.well_tiles(plate_manifest, w, header, opener) for w in valid}
        code = [s.fingerprint for s in pipeline.steps]
        whole = (
            [survey.signature(plate_manifest, w) for w in valid] if pipeline.has_plate_scope else []
        )
        prints = {
            w: _digest(code, survey.signature(plate_manifest, w), whole, imaging.pixel_size_um)
            for w in valid
        }
        previous = stored_partition(context, summary_key, plate)
        done = set()
        if previous is not None and "fingerprint" in previous:
            ok = previous[previous["status"].isin(["ran", "reused"])]
            done = {
                w for w, f in zip(ok["well"], ok["fingerprint"], strict=True) if prints.get(w) == f
            }
        todo = [w for w in valid if w in selected and w not in done]
        stores = stored_steps(storage, plate, outputs)
        for stored in stores.values():
            omezarr.prepare_plate(stored.store, [split_well(w) for w in valid])
        stores |= stored_steps(storage, plate, external)
        outcome = run_plate(
            pipeline,
            wells,
            todo,
            _plate_context(plate_manifest, header, imaging),
            stores,
            prints,
            imaging.workers(),
        )
        for well, error in sorted(outcome.errors.items()):
            context.log.error(f"well {well}: {error}")
        kept = [w for w in valid if w not in outcome.ran and w not in outcome.errors]
        tables = {}
        for step in outputs:
            if step.output != "table":
                continue
            old = stored_partition(context, step_key(step), plate) if kept else None
            frames = [old[old["well"].isin(kept)]] if old is not None and "well" in old else []
            tables[step.key] = pd.concat(
                frames + outcome.tables.get(step.key, []), ignore_index=True
            )
        last_table = next((tables[s.key] for s in reversed(outputs) if s.key in tables), None)
        summary = well_summary(last_table, valid)
        status = {w: "ran" for w in outcome.ran} | {w: "failed" for w in outcome.errors}
        summary.insert(
            1, "status", [status.get(w, "reused" if w in done else "not run") for w in valid]
        )
        summary.insert(2, "error", [outcome.errors.get(w, "") for w in valid])
        summary["fingerprint"] = [prints[w] if status.get(w) != "failed" else "" for w in valid]
        failed = summary[summary["status"] == "failed"]
        first = f"{failed['well'].iloc[0]}: {failed['error'].iloc[0]}" if len(failed) else ""
        fail_past_threshold(  # before any output: a failed run stores nothing
            len(failed), len(valid), imaging, f"pipeline {pipeline.name}", first
        )
        for step in outputs:
            key = step_key(step)
            if step.output == "table":
                value = tables[step.key]
                yield dg.Output(
                    value,
                    output_name=key.to_python_identifier(),
                    metadata={
                        "rows": len(value),
                        "wells": int(value["well"].nunique()) if "well" in value else 0,
                        "preview": table_md(value),
                    },
                )
                continue
            store = stores[step.key].store
            complete = [
                split_well(w)
                for w in valid
                if w not in outcome.errors
                and (omezarr.well_path(store, *split_well(w)) / "0" / "zarr.json").exists()
            ]
            if complete:
                fields = max(
                    len([p for p in omezarr.well_path(store, *c).iterdir() if p.name.isdigit()])
                    for c in complete
                )
                omezarr.write_plate_index(store, plate, complete, fields)
            value = pd.DataFrame({"well": [f"{r}{c:02d}" for r, c in complete]}).assign(
                store=str(store)
            )
            yield dg.Output(
                value,
                output_name=key.to_python_identifier(),
                metadata={
                    "ome_zarr": dg.MetadataValue.path(str(store)),
                    "wells": len(complete),
                },
            )
        counts = {
            w: float(c)
            for w, c in zip(summary["well"], summary["objects"], strict=True)
            if pd.notna(c)
        }
        metadata = {
            "wells_ran": len(outcome.ran),
            "wells_reused": int((summary["status"] == "reused").sum()),
            "wells_failed": len(failed),
            "failed_wells": table_md(failed[["well", "error"]]),
            "objects": int(summary["objects"].fillna(0).sum()) if last_table is not None else 0,
        }
        if counts:
            png = plate_heatmap_png(counts, f"{pipeline.name}: objects per well")
            metadata["heatmap"] = dg.MetadataValue.md(markdown_image(png, "objects per well"))
        yield dg.Output(summary, output_name=summary_key.to_python_identifier(), metadata=metadata)

    checks = _checks(pipeline, summary_key)
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


def _checks(pipeline: CompiledPipeline, summary_key: dg.AssetKey) -> list[dg.AssetChecksDefinition]:
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
