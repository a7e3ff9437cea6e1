"""The omics code location, declared once (platform_core.location): each workflow (shipped
under defs/workflows/, or the operator's in ``OMICS_WORKFLOWS_DIR``) has partitions of its own
(a partition is a run of a config); a config YAML dropped into the inbox is registered as a
run of the loaded workflow its ``name:`` names."""

from pathlib import Path

import dagster as dg

from omics_assets.components.loader import load_workflows
from omics_assets.components.workflow import workflows_of
from omics_assets.config import ConfigError, yaml_file
from omics_assets.inputs import UNTRUSTED, check_untrusted_paths, dropped_path_keys, register_run
from omics_assets.partitions import workflow_partitions
from omics_assets.resources import OmicsSettings
from omics_assets.workflows import default_run_key, resolve_run
from platform_core.confine import ConfinementError, open_confined
from platform_core.datastore import DataStore
from platform_core.inbox import MARKER, Inbox, Registered
from platform_core.location import Location, Setting
from platform_core.steps import StepNotAllowedError, refuse_dropped_steps
from platform_core.yamldoc import MAX_YAML_BYTES


def config_inbox(loaded: dg.Definitions) -> Inbox:
    """One inbox over every workflow of the loaded Definitions (one sensor, not one per
    workflow: each is a daemon evaluation every interval)."""
    workflows = workflows_of(loaded)

    def register(store: DataStore, path: Path) -> Registered:
        with open_confined(path, [store.inbox().resolve()], "config") as handle:
            content = handle.read(MAX_YAML_BYTES + 1)  # never through a link
        dropped = yaml_file(path, content=content)  # the safe loader: no Python tags, no aliases
        refuse_dropped_steps(dropped.data, path)
        resolved = resolve_run(workflows, None, path, user=dropped)  # the file read once
        definition = workflows[resolved.config["name"]]
        if definition.domain == "custom" and dropped.data.get("domain_specific"):
            raise ConfigError(
                f"{path}: a dropped config does not set domain_specific of the custom workflow "
                f"{definition.name}: its steps' inputs are the workflow's own (run it with "
                "`omics run --config` to give your own)"
            )
        untrusted = dropped_path_keys(definition.domain, dropped)
        config = {**resolved.config, UNTRUSTED: untrusted} if untrusted else resolved.config
        config = check_untrusted_paths(store, config)  # recorded as they resolve now
        key = default_run_key(resolved, path)
        register_run(store, definition, key, config)
        return Registered(key, workflow_partitions(definition), definition.name)

    return Inbox(
        "omics_config_inbox",
        register,
        (ValueError, StepNotAllowedError, ConfinementError, OSError),
        "file",
        suffixes=(".yaml", ".yml"),
        after="move",
        description="Registers each complete config YAML in <data root>/omics/inbox/ as a run "
        "of the workflow its name: names (its layers: defaults, the definition, OMICS_* and "
        f"the file) and requests it. Complete: a <name>{MARKER} file beside it, or unchanged "
        "across two ticks. A config that does not validate moves to rejected/ with a "
        ".error.txt naming the key, file and line. A dropped config never defines steps, and the "
        "paths it sets stay inside the data root (work_dir) or the input roots (inputs, the "
        "FASTQs of its samplesheet).",
    )


SETTINGS = {
    "tool_timeout_seconds": "OMICS_TOOL_TIMEOUT_SECONDS",
    "max_input_mb": "OMICS_MAX_INPUT_MB",
}
LOCATION = Location(
    "omics",
    None,
    item="run",
    inbox=config_inbox,
    settings={"omics": Setting(OmicsSettings, SETTINGS)},
    data_defs=load_workflows,
)
