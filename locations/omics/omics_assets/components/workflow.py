"""``OmicsWorkflow``: the seed's workflow config as a Dagster component.

Its YAML attributes are exactly the seed's config shape (``name``, ``domain``, ``work_dir``,
``threads``, ``domain_specific``, ``steps: {<step>: {enabled, config}}``, plus ``input:`` for a
gwas workflow fed by a simulation workflow). ``build_defs`` makes one asset per enabled step
(keys ``<name>/<step>``, deps rewired past disabled steps), its status checks, the workflow's
job; the job carries the workflow's definition as metadata, so everything else (CLI, inbox)
reads the workflows from the loaded Definitions (``workflows_of``) instead of the YAML files.

A workflow that cannot be built (a name that breaks Dagster's rule, a step function from a
module the operator did not register, a config that does not validate) is refused with its
reason and builds nothing; the location still loads, and ``refused_workflows`` (``omics
workflows``) says which file was refused and why.
"""

import logging
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from omics_assets.assets.checks import build_quality_checks
from omics_assets.assets.steps import build_step_asset
from omics_assets.config import ConfigError
from omics_assets.partitions import workflow_partitions
from omics_assets.science.domains import STEPS, step, wiring
from omics_assets.workflows import WorkflowDefinition, load_definition
from platform_core.keys import validate_name
from platform_core.steps import resolve_step, step_functions

WORKFLOW_METADATA = "omics/workflow"
REFUSED_METADATA = "omics/refused/"  # + the file: why the workflow there was not built
log = logging.getLogger(__name__)


class OmicsWorkflow(dg.Component, dg.Model, dg.Resolvable):
    """A config-driven omics workflow (rnaseq, gwas or simulation); one asset per step."""

    name: str
    domain: Literal["rnaseq", "gwas", "simulation"]
    work_dir: str | None = None
    threads: int | None = None
    input: str | None = None
    domain_specific: dict[str, Any] | None = None
    steps: dict[str, Any] | None = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        file = context.path / "defs.yaml"
        try:
            return self._build(file)
        except (ConfigError, ValueError) as error:
            message = f"workflow {self.name!r} ({file}) refused: {error}"
            log.warning(message)
            return dg.Definitions(metadata={f"{REFUSED_METADATA}{file}": message})

    def _build(self, file: Path) -> dg.Definitions:
        validate_name(self.name, "workflow name")
        attributes = self.model_dump(exclude_none=True)
        for _, step_name, func in step_functions(attributes):  # the daemon loads it: no code
            resolve_step(str(func), {}, step_name, str(file), user_code=False)
        definition = load_definition(attributes, file)
        for spec in STEPS[self.domain]:
            if spec.required and spec.name not in definition.steps:
                raise ConfigError(
                    f"{file}: step {spec.name} cannot be disabled: the steps after it all read it"
                )
        partitions = workflow_partitions(definition)
        first = STEPS[self.domain][0].name
        enabled = {s.name: s.name in definition.steps for s in STEPS[self.domain]}
        assets, checks = [], []
        for name, reads in wiring(self.domain, enabled).items():
            spec = step(self.domain, name)
            upstream_reads = definition.upstream_steps if name == first else ()
            asset = build_step_asset(definition, spec, reads, upstream_reads, partitions)
            assets.append(asset)
            checks += build_quality_checks(spec.checks, asset, partitions)
        job = dg.define_asset_job(
            self.name,
            selection=dg.AssetSelection.groups(self.name).upstream(),
            description=f"every enabled step of the {self.domain} workflow {self.name}",
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
