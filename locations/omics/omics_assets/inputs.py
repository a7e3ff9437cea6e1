"""The omics location's inputs: a run is a partition of its workflow, keyed by name, and its
config, resolved once through the layers (omics_assets.workflows.resolve_run), is recorded in
the input registry (platform_core.inputs) and never changed: from ``omics submit`` / ``omics
run``, the config inbox, or, for a partition added in the UI, the workflow's own config."""

from collections.abc import Mapping
from typing import Any

from omics_assets import config as cfg
from omics_assets.workflows import WorkflowDefinition, resolve_run
from platform_core.datastore import DataStore
from platform_core.inputs import InputRegistry, RegisteredElsewhereError


def _runs(definition: WorkflowDefinition) -> InputRegistry:
    """The runs of a workflow's partitions (one record per run key and workflow)."""
    command = f"omics submit --workflow {definition.name}"
    return InputRegistry(("runs", definition.partitions_name), "run", command)


def register_run(
    store: DataStore, definition: WorkflowDefinition, key: str, config: Mapping[str, Any]
) -> str:
    """Record the run's resolved config under its key; the same config again is a no-op, a
    different one under a used key is refused."""

    def taken(_: dict) -> str:
        return (
            f"run {key!r} of workflow {definition.name} exists with another config; pass a "
            "new --run name"
        )

    try:
        _runs(definition).register(store, f"{key}.{definition.name}", dict(config), taken)
    except RegisteredElsewhereError as error:
        raise cfg.ConfigError(str(error)) from None
    return key


def is_registered(store: DataStore, definition: WorkflowDefinition, key: str) -> bool:
    return _runs(definition).entry(store, f"{key}.{definition.name}").exists()


def registered_config(store: DataStore, definition: WorkflowDefinition, key: str) -> dict[str, Any]:
    """The config a run was registered with; a run added in the UI (never registered) gets
    the workflow's own config (defaults, definition, environment), registered now."""
    if is_registered(store, definition, key):
        return _runs(definition).record(store, f"{key}.{definition.name}")
    config = resolve_run({definition.name: definition}, definition.name).config
    register_run(store, definition, key, config)
    return config
