"""The omics code location, declared once (platform_core.location): each workflow is a
component under defs/ with partitions of its own (a partition is a run of a config); a config
YAML dropped into the inbox is registered as a run of the workflow its ``name:`` names."""

import dagster as dg

from omics_assets.components.workflow import workflows_of
from omics_assets.config import ConfigError
from omics_assets.inputs import register_run
from omics_assets.partitions import workflow_partitions
from omics_assets.resources import OmicsSettings
from omics_assets.workflows import default_run_key, resolve_run
from platform_core.datastore import DataStore
from platform_core.inbox import MARKER, Inbox, Registered
from platform_core.keys import InvalidKeyError
from platform_core.location import Location, Setting


def config_inbox(loaded: dg.Definitions) -> Inbox:
    """One inbox over every workflow of the loaded Definitions (one sensor, not one per
    workflow: each is a daemon evaluation every interval)."""
    workflows = workflows_of(loaded)

    def register(store: DataStore, path) -> Registered:
        resolved = resolve_run(workflows, None, path)
        definition = workflows[resolved.config["name"]]
        key = default_run_key(resolved, path)
        register_run(store, definition, key, resolved.config)
        return Registered(key, workflow_partitions(definition), definition.name)

    return Inbox(
        "omics_config_inbox",
        register,
        (ConfigError, InvalidKeyError, OSError),
        "file",
        suffixes=(".yaml", ".yml"),
        after="move",
        description="Registers each complete config YAML in <data root>/omics/inbox/ as a run "
        "of the workflow its name: names (its layers: defaults, the definition, OMICS_* and "
        f"the file) and requests it. Complete: a <name>{MARKER} file beside it, or unchanged "
        "across two ticks. A config that does not validate moves to rejected/ with a "
        ".error.txt naming the key, file and line.",
    )


TIMEOUT = {"tool_timeout_seconds": "OMICS_TOOL_TIMEOUT_SECONDS"}
LOCATION = Location(
    "omics",
    None,
    item="run",
    inbox=config_inbox,
    settings={"omics": Setting(OmicsSettings, TIMEOUT)},
)
