"""The Tetra pipelines' failure actions: the seed's recovery procedures as defaults, under
what the platform config file sets (``locations.tetra.pipelines.<group>.failure_actions``)
and ``$TETRA_RETRY_DELAY_SECONDS``. Read when the Definitions are built."""

from typing import Any, Literal

from platform_core import failure, platform_config
from platform_core.platform_config import ConfigError, LoadedConfig
from platform_core.platform_models import FailureActions

Fallback = Literal["use_cached_data", "use_previous_scenarios"]
RETRY_DELAY_ENV = "TETRA_RETRY_DELAY_SECONDS"
# The seed's recovery_procedures (notify and escalation name alert channels: the alerting
# section's to configure, so they are not defaulted here).
SEED_ACTIONS: dict[str, FailureActions] = {
    "data": FailureActions(retry_count=3, fallback="use_cached_data"),
    "scenarios": FailureActions(retry_count=2, fallback="use_previous_scenarios"),
    "metrics": FailureActions(retry_count=3, partial_recovery=True),
    "assessment": FailureActions(retry_count=1, checkpoint_recovery=True),
}
# (action, value) -> the one pipeline whose assets implement it: elsewhere it would be
# accepted and silently do nothing.
ONLY_IN: dict[tuple[str, Any], str] = {
    ("fallback", "use_cached_data"): "data",
    ("fallback", "use_previous_scenarios"): "scenarios",
    ("partial_recovery", True): "metrics",
    ("checkpoint_recovery", True): "assessment",
}


def group_actions(group: str) -> FailureActions:
    """A pipeline's failure actions: seed defaults < platform config file < environment.
    An action the file sets on a pipeline that cannot apply it is refused (ConfigError
    naming the file and line)."""
    cfg = platform_config.load()
    stated = cfg.pipeline("tetra", group).failure_actions
    for action in sorted(stated.model_fields_set):
        owner = ONLY_IN.get((action, getattr(stated, action)))
        if owner is not None and owner != group:
            path = _action_path(cfg, group, action)
            raise ConfigError(
                f"{cfg.where(*path)}: {'.'.join(path)}: {action}: {getattr(stated, action)} "
                f"applies to the {owner} pipeline only; {group} cannot use it"
            )
    return failure.actions("tetra", group, SEED_ACTIONS[group], RETRY_DELAY_ENV)


def _action_path(cfg: LoadedConfig, group: str, action: str) -> tuple[str, ...]:
    """The YAML path of ``action`` in ``group``'s failure actions: a mapping key, or an entry
    of the seed's list of one-key maps (``- fallback: use_cached_data``)."""
    path = ("locations", "tetra", "pipelines", group, "failure_actions")
    raw = cfg.model.locations.get("tetra", {}).get("pipelines", {}).get(group, {})
    stated = raw.get("failure_actions") if isinstance(raw, dict) else None
    if isinstance(stated, list):
        index = next(i for i, item in enumerate(stated) if action in item)
        return (*path, str(index), action)
    return (*path, action)
