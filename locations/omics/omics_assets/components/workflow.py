"""``OmicsWorkflow``: the seed's workflow config as a Dagster component, and what one
workflow builds.

Its YAML attributes are exactly the seed's config shape (``name``, ``domain``, ``work_dir``,
``threads``, ``verbose``, ``inputs``, ``domain_specific``, ``steps: {<step>: {enabled,
config}}``; a step of the user's own adds ``func``, ``reads`` and ``checks``).
``build_workflow_defs`` makes one asset per enabled step (keys ``<name>/<step>``, deps rewired
past disabled steps), its checks and the workflow's job; the job carries the workflow's
definition as metadata, so everything else (CLI, inbox, API) reads the workflows from the
loaded Definitions (``workflows_of``) instead of the YAML files.

The location loads its workflow files itself (``components.loader``: shipped and the
operator's folder); the component serves a dg project that declares a workflow in its own
``defs/`` tree.
"""

from typing import Any, Literal

import dagster as dg

from omics_assets.assets.checks import build_quality_checks
from omics_assets.assets.steps import build_step_asset
from omics_assets.partitions import workflow_partitions
from omics_assets.science.domains import Step, wiring
from omics_assets.workflows import WorkflowDefinition

WORKFLOW_METADATA = "omics/workflow"
REFUSED_METADATA = "omics/refused/"  # + the file: why the workflow there was not built


class OmicsWorkflow(dg.Component, dg.Model, dg.Resolvable):
    """A config-driven omics workflow (rnaseq, gwas, simulation or custom); one asset per
    step."""

    name: str
    domain: Literal["rnaseq", "gwas", "simulation", "custom"]
    work_dir: str | None = None
    threads: int | None = None
    verbose: bool | None = None
    inputs: dict[str, str] | None = None
    domain_specific: dict[str, Any] | None = None
    steps: dict[str, Any] | None = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from omics_assets.components.loader import workflows_defs

        file = context.path / "defs.yaml"
        return workflows_defs([(file, self.model_dump(exclude_none=True), ("attributes",))])


def build_workflow_defs(definition: WorkflowDefinition, specs: tuple[Step, ...]) -> dg.Definitions:
    """The workflow's assets (one per enabled step), their checks and its job."""
    partitions = workflow_partitions(definition)
    enabled = {s.name: s.name in definition.steps for s in specs}
    wired = wiring(specs, enabled)
    assets, checks = [], []
    for spec in specs:
        if not enabled[spec.name]:
            continue
        asset = build_step_asset(definition, spec, wired[spec.name], partitions)
        assets.append(asset)
        checks += build_quality_checks(spec.checks, asset, partitions)
    job = dg.define_asset_job(
        definition.name,
        selection=dg.AssetSelection.groups(definition.name),
        description=f"every enabled step of the {definition.domain} workflow {definition.name}",
        metadata={WORKFLOW_METADATA: definition.as_record()},
    )
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=[job])


def refused_workflows(defs: dg.Definitions) -> dict[str, str]:
    """Why each refused workflow file was not built, by file."""
    metadata = defs.metadata or {}
    return {
        key.removeprefix(REFUSED_METADATA): str(getattr(value, "value", value))
        for key, value in metadata.items()
        if key.startswith(REFUSED_METADATA)
    }


def workflows_of(defs: dg.Definitions) -> dict[str, WorkflowDefinition]:
    """The workflows of the loaded Definitions by name, from their jobs' metadata."""
    found = {}
    for job in defs.jobs or []:
        record = (job.metadata or {}).get(WORKFLOW_METADATA)
        if record is not None:
            record = getattr(record, "value", record)  # a MetadataValue once normalized
            definition = WorkflowDefinition.from_record(record)
            found[definition.name] = definition
    return found
