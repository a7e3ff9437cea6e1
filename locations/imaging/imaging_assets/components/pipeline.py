"""``ImagingPipeline``: a pipeline YAML as a Dagster component, and the location's loader of
every pipeline file: the shipped ones (``imaging_assets/defs/pipelines/``) and the operator's
(``IMAGING_PIPELINES_DIR``, default ``<data root>/imaging/pipelines/``), read when the
location loads (the UI's Reload picks up a new file).

A file that cannot be built (a name that breaks Dagster's rule, an unknown key, a step
function that does not import, is not allowed or does not fit its kwargs, a read of a step
that does not exist) is refused with its reason and builds nothing; the location still
loads, and ``refused_pipelines`` (``hcs pipelines``) says which file and why."""

import logging
import os
from pathlib import Path
from typing import Any

import dagster as dg

from imaging_assets.components.pipeline_assets import PIPELINE_METADATA, build_pipeline_defs
from imaging_assets.engine.compile import CompiledPipeline, CompiledStep, compile_pipeline
from imaging_assets.engine.spec import (
    Pipeline,
    PipelineError,
    pipeline_from_document,
    read_pipeline_file,
)
from platform_core.datastore import operator_root
from platform_core.steps import StepNotAllowedError

PIPELINES_ENV = "IMAGING_PIPELINES_DIR"
SHIPPED_FOLDER = Path(__file__).parents[1] / "defs" / "pipelines"
REFUSED_METADATA = "imaging/refused/"  # + the file: why its pipeline was not built
RESERVED = frozenset({"stitch", "imaging_plate", "imaging"})  # the shipped graph's names
log = logging.getLogger(__name__)


class ImagingPipeline(dg.Component, dg.Model, dg.Resolvable):
    """An imaging pipeline of function steps (see imaging_assets.engine.spec)."""

    name: str
    steps: list[dict[str, Any]]
    description: str = ""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        file = context.path / "defs.yaml"
        return pipelines_defs([(pipeline_from_document(self.model_dump(), file), False)])


def pipelines_folder() -> Path:
    """The operator's pipelines folder."""
    configured = os.environ.get(PIPELINES_ENV)
    return Path(configured).resolve() if configured else operator_root() / "imaging" / "pipelines"


def pipeline_files() -> list[Path]:
    """Shipped pipeline files, then the operator's, each folder in name order."""
    folders = [SHIPPED_FOLDER, pipelines_folder()]
    return [f for folder in folders if folder.is_dir() for f in sorted(folder.glob("*.yaml"))]


Source = tuple[Path | Pipeline, bool]  # a file or a pipeline; whether it is the user's code


def compile_loaded(
    sources: list[Source], replaced: frozenset[str] = frozenset()
) -> tuple[list[CompiledPipeline], dict[str, str]]:
    """The pipelines that compile, in order, and why each other source was refused; a file
    whose pipeline is named in ``replaced`` is skipped (the user's own replaces it)."""
    compiled: list[CompiledPipeline] = []
    refused: dict[str, str] = {}
    known: dict[str, CompiledStep] = {}
    for source, user_code in sources:
        where = str(source) if isinstance(source, Path) else source.where
        try:
            pipeline = read_pipeline_file(source) if isinstance(source, Path) else source
            if isinstance(source, Path) and pipeline.name in replaced:
                continue
            if pipeline.name in RESERVED or any(p.name == pipeline.name for p in compiled):
                raise PipelineError(f"{where}: the pipeline name {pipeline.name!r} is taken")
            done = compile_pipeline(pipeline, known, user_code)
        except (PipelineError, StepNotAllowedError) as error:
            refused[where] = str(error)
            log.warning(f"pipeline {where} refused: {error}")
            continue
        compiled.append(done)
        known |= {s.key: s for s in done.steps}
    return compiled, refused


def pipelines_defs(sources: list[Source], replaced: frozenset[str] = frozenset()) -> dg.Definitions:
    """Definitions of the pipelines that compile among ``sources``, and why others did not."""
    compiled, refused = compile_loaded(sources, replaced)
    known = {s.key: s for p in compiled for s in p.steps}
    built = [build_pipeline_defs(p, known) for p in compiled]
    return dg.Definitions.merge(
        *built,
        dg.Definitions(metadata={f"{REFUSED_METADATA}{f}": why for f, why in refused.items()}),
    )


def load_pipelines(own: tuple[Pipeline, ...] = ()) -> dg.Definitions:
    """Every pipeline file's definitions (the location's ``data_defs``), and the user's
    ``own`` pipelines (compiled as their code: the CLI and the Python API)."""
    sources: list[Source] = [(f, False) for f in pipeline_files()]
    return pipelines_defs(sources + [(p, True) for p in own], frozenset(p.name for p in own))


def refused_pipelines(defs: dg.Definitions) -> dict[str, str]:
    """Why each refused pipeline file was not built, by file."""
    return {
        key.removeprefix(REFUSED_METADATA): str(getattr(value, "value", value))
        for key, value in (defs.metadata or {}).items()
        if key.startswith(REFUSED_METADATA)
    }


def pipelines_of(defs: dg.Definitions) -> dict[str, dict]:
    """The loaded pipelines by name: their source file and steps (from their jobs)."""
    found = {}
    for job in defs.jobs or []:
        record = (getattr(job, "metadata", None) or {}).get(PIPELINE_METADATA)
        if record is not None:
            found[job.name] = dict(getattr(record, "value", record))
    return found
