"""One pipeline run on one plate, as its multi-asset executes it: which wells to do (reuse by
fingerprint: promoted results, or wells a failed run already computed), the run itself, the
threshold, then the wells' staged results moved into the assets and the outputs."""

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from imaging_assets.defs.assets import survey
from imaging_assets.defs.assets.common import fail_past_threshold, selected_wells, table_md
from imaging_assets.engine.apply import PlateContext
from imaging_assets.engine.cache import WellCache
from imaging_assets.engine.compile import CompiledPipeline, CompiledStep
from imaging_assets.engine.plate import StoredStep, run_plate
from imaging_assets.engine.summary import plate_heatmap_png, well_summary
from imaging_assets.inputs import plate_folder
from imaging_assets.resources import ImagingConfig
from imaging_assets.science import omezarr
from imaging_assets.science.layouts import split_well
from platform_core.checkpoint import fingerprint
from platform_core.datastore import DataStore
from platform_core.figures import markdown_image
from platform_core.io import stored_partition

SUMMARY = "wells"


def step_key(step: CompiledStep) -> dg.AssetKey:
    return dg.AssetKey([step.pipeline, step.name])


def summary_key(pipeline: CompiledPipeline) -> dg.AssetKey:
    return dg.AssetKey([pipeline.name, SUMMARY])


def stored_steps(
    storage: DataStore, plate: str, steps: list[CompiledStep]
) -> dict[str, StoredStep]:
    """Where each image or labels step among ``steps`` keeps its OME-Zarr plate."""
    return {
        s.key: StoredStep(
            storage.value_path(step_key(s), plate, "ome.zarr"),
            storage.value_path(step_key(s), plate, "staging.ome.zarr"),
            s.output,
            s.name,
        )
        for s in steps
        if s.output != "table"
    }


def plate_context(
    manifest: pd.DataFrame, header: survey.TileHeader, imaging: ImagingConfig
) -> PlateContext:
    names = (
        manifest.drop_duplicates("channel").set_index("channel")["channel_name"].to_dict()
        if "channel_name" in manifest
        else {}
    )
    pixel = imaging.pixel_size_um or manifest["pixel_size_um"].iloc[0]
    grid = manifest.drop_duplicates("site")[["site", "grid_row", "grid_col"]].sort_values("site")
    return PlateContext(
        {int(k): str(v) for k, v in names.items()},
        None if pd.isna(pixel) else float(pixel),
        grid.reset_index(drop=True),
        survey.stated_step(manifest, header, imaging),
    )


@dataclass(frozen=True)
class Plan:
    """The wells of a run: valid ones, their fingerprints, and which are done already."""

    valid: list[str]
    prints: dict[str, str]
    promoted: set[str]  # in the assets with this fingerprint
    cached: set[str]  # computed by an earlier run that failed
    todo: list[str]


def plan_wells(
    context: dg.AssetExecutionContext,
    pipeline: CompiledPipeline,
    manifest: pd.DataFrame,
    validation: pd.DataFrame,
    plate: PlateContext,
    imaging: ImagingConfig,
    cache: WellCache,
) -> Plan:
    """Each well's fingerprint: the steps' code and kwargs (and those of the steps of other
    pipelines they read), the run's plate context, the well's tiles, and every well's tiles
    when a step has plate scope."""
    valid = validation.loc[validation["status"] == "ok", "well"].tolist()
    whole = [survey.signature(manifest, w) for w in valid] if pipeline.has_plate_scope else []
    shared = ([s.fingerprint for s in pipeline.steps], plate.tile_step_px, plate.pixel_size_um)
    names = sorted(plate.channel_names.items())
    prints = {w: fingerprint(shared, names, survey.signature(manifest, w), whole) for w in valid}
    previous = stored_partition(context, summary_key(pipeline), context.partition_key)
    promoted = set()
    if previous is not None and "fingerprint" in previous:
        ok = previous[previous["status"].isin(["ran", "reused"])]
        promoted = {
            w for w, f in zip(ok["well"], ok["fingerprint"], strict=True) if prints.get(w) == f
        }
    cached = {w for w in valid if w not in promoted and cache.fingerprint(w) == prints[w]}
    selected = set(selected_wells(valid, imaging.wells))
    todo = [w for w in valid if w in selected and w not in promoted | cached]
    return Plan(valid, prints, promoted, cached, todo)


def execute(
    context: dg.AssetExecutionContext,
    pipeline: CompiledPipeline,
    external: list[CompiledStep],
    imaging: ImagingConfig,
    storage: DataStore,
    manifest: pd.DataFrame,
    validation: pd.DataFrame,
) -> Iterator[dg.Output]:
    """The pipeline on the plate: its outputs, or a Failure (then no asset changes)."""
    plate = context.partition_key
    header = survey.validated_header(validation)
    plate_ctx = plate_context(manifest, header, imaging)
    cache = WellCache(storage.value_path(summary_key(pipeline), plate, "cache"))
    plan = plan_wells(context, pipeline, manifest, validation, plate_ctx, imaging, cache)
    opener = plate_folder(storage, plate).open
    wells = {w: survey.well_tiles(manifest, w, header, opener) for w in plan.valid}
    own = stored_steps(storage, plate, list(pipeline.outputs))
    for stored in own.values():
        omezarr.prepare_plate(stored.staging, [split_well(w) for w in plan.todo])
    stores = own | stored_steps(storage, plate, external)
    outcome = run_plate(
        pipeline, wells, plan.todo, plate_ctx, stores, plan.prints, imaging.workers()
    )
    for well in outcome.ran:
        cache.record(well, plan.prints[well], outcome.tables[well])
    for well, error in sorted(outcome.errors.items()):
        context.log.error(f"well {well}: {error}")
    for well, error in sorted(outcome.left_out.items()):
        context.log.warning(f"well {well} left out of the plate-scope steps: {error}")
    if outcome.errors:
        first = next(iter(sorted(outcome.errors.items())))
        fail_past_threshold(  # before any asset changes: a failed run stores nothing
            len(outcome.errors),
            len(plan.valid),
            imaging,
            f"pipeline {pipeline.name}",
            f"{first[0]}: {first[1]}",
        )
    fresh = sorted(set(outcome.ran) | plan.cached)
    done = [w for w in plan.valid if w in plan.promoted or w in fresh]
    for stored in own.values():
        for well in fresh:
            omezarr.promote_well(stored.staging, stored.store, *split_well(well))
        if done:
            omezarr.write_plate_index(
                stored.store, plate, [split_well(w) for w in done], max_fields(stored, done)
            )
    fresh_tables = {  # this run's from memory, a failed run's from the cache
        w: outcome.tables[w] if w in outcome.tables else cache.tables(w) for w in fresh
    }
    tables = collect_tables(context, pipeline, plan, fresh_tables)
    cache.forget(fresh)
    yield from outputs(pipeline, plan, outcome.errors, fresh, done, tables, own)


def max_fields(stored: StoredStep, wells: list[str]) -> int:
    return max(
        len(
            [
                p
                for p in omezarr.well_path(stored.store, *split_well(w)).iterdir()
                if p.name.isdigit()
            ]
        )
        for w in wells
    )


def collect_tables(
    context: dg.AssetExecutionContext,
    pipeline: CompiledPipeline,
    plan: Plan,
    fresh_tables: dict[str, dict[str, pd.DataFrame]],
) -> dict[str, pd.DataFrame]:
    """Each table step's plate table: stored rows of the wells kept, the fresh wells' rows
    (well -> step key -> table: this run's, or the cached ones of a failed run)."""
    tables = {}
    for step in pipeline.outputs:
        if step.output != "table":
            continue
        old = stored_partition(context, step_key(step), context.partition_key)
        kept = old[old["well"].isin(plan.promoted)] if old is not None and "well" in old else None
        frames = [kept] if kept is not None and len(kept) else []
        frames += [t[step.key] for t in fresh_tables.values() if step.key in t]
        tables[step.key] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return tables


def well_status(well: str, errors: dict[str, str], ran: set[str], plan: Plan) -> str:
    """failed, ran (this run), reused (stored or computed earlier, unchanged) or not run (not
    selected, and nothing unchanged stored)."""
    if well in errors:
        return "failed"
    if well in ran:
        return "ran"
    return "reused" if well in plan.promoted | plan.cached else "not run"


def outputs(
    pipeline: CompiledPipeline,
    plan: Plan,
    errors: dict[str, str],
    fresh: list[str],
    done: list[str],
    tables: dict[str, pd.DataFrame],
    own: dict[str, StoredStep],
) -> Iterator[dg.Output]:
    for step in pipeline.outputs:
        name = step_key(step).to_python_identifier()
        if step.output == "table":
            value = tables[step.key]
            wells = int(value["well"].nunique()) if "well" in value else 0
            metadata = {"rows": len(value), "wells": wells, "preview": table_md(value)}
            yield dg.Output(value, output_name=name, metadata=metadata)
            continue
        store = own[step.key].store
        value = pd.DataFrame({"well": done, "store": str(store)})
        metadata = {"ome_zarr": dg.MetadataValue.path(str(store)), "wells": len(done)}
        yield dg.Output(value, output_name=name, metadata=metadata)
    last = next((tables[s.key] for s in reversed(pipeline.outputs) if s.key in tables), None)
    summary = well_summary(last, plan.valid)
    ran = set(fresh) - plan.cached
    status = [well_status(w, errors, ran, plan) for w in plan.valid]
    summary.insert(1, "status", status)
    summary.insert(2, "error", [errors.get(w, "") for w in plan.valid])
    summary["fingerprint"] = [
        plan.prints[w] if s in ("ran", "reused") else ""
        for w, s in zip(plan.valid, status, strict=True)
    ]
    failed = summary[summary["status"] == "failed"]
    metadata = {
        "wells_ran": len(ran),
        "wells_reused": int((summary["status"] == "reused").sum()),
        "wells_failed": len(failed),
        "failed_wells": table_md(failed[["well", "error"]]),
        "objects": int(summary["objects"].fillna(0).sum()) if last is not None else 0,
    }
    counts = {
        w: float(c) for w, c in zip(summary["well"], summary["objects"], strict=True) if pd.notna(c)
    }
    if counts:
        png = plate_heatmap_png(counts, f"{pipeline.name}: objects per well")
        metadata["heatmap"] = dg.MetadataValue.md(markdown_image(png, "objects per well"))
    yield dg.Output(
        summary, output_name=summary_key(pipeline).to_python_identifier(), metadata=metadata
    )
