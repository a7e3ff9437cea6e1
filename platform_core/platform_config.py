"""The platform config file: one YAML for every location (``$PLATFORM_CONFIG`` or a CLI's
``--platform-config``), validated once, every error naming the file and line.

Layers, each over the one before: the code's defaults, this file, the environment, then CLI
flags and run config. It holds alerting, health, the step-module allowlist and each
location's settings (``locations.<name>``: flat keys, and ``pipelines.<group>``). It never
holds the data root (the environment owns storage) nor a secret: a secret is written
``"${VAR}"`` and becomes the variable's name (``<key>_env: VAR``), read at send time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from platform_core.platform_models import RENAMED, CommonSettings, PipelineConfig, PlatformConfig
from platform_core.yamldoc import load_mapping, yaml_line

CONFIG_ENV = "PLATFORM_CONFIG"
RUN_TAG_DIGEST = "platform/config_digest"
RUN_TAG_FILE = "platform/config_file"
GENERIC_PIPELINE_KEYS = (  # what every location's pipelines act on (alerts, health)
    "max_data_age_hours",
    "failure_actions.notify",
    "failure_actions.escalation",
)
RUN_TAG_RECORDED = "platform/config_recorded_by"  # the run that wrote the two tags above
REFUSED_KEYS = ("data_root", "root", "storage")  # the environment owns storage


class ConfigError(ValueError):
    """A platform config that cannot be used: ``<file> line <n>: <dotted.key>: <reason>``."""


_PIPELINES = TypeAdapter(dict[str, PipelineConfig])


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config, the file it came from (None: defaults) and its sha256."""

    model: PlatformConfig
    file: Path | None
    digest: str

    def where(self, *path: str | int) -> str:
        """``<file> line <n>`` of the deepest key of ``path`` found in the file."""
        if self.file is None:
            return "defaults"
        line = yaml_line(self.file, tuple(str(p) for p in path))
        return f"{self.file}" + (f" line {line}" if line else "")

    def section(self, location: str) -> dict[str, Any]:
        """The flat settings of ``locations.<location>`` (without ``pipelines``)."""
        return {k: v for k, v in self.model.locations.get(location, {}).items() if k != "pipelines"}

    @functools.cached_property
    def _pipelines(self) -> dict[str, dict[str, PipelineConfig]]:
        """Every location's ``pipelines`` section, validated once."""
        return {
            name: _PIPELINES.validate_python(section.get("pipelines", {}))
            for name, section in self.model.locations.items()
        }

    def pipeline(self, location: str, group: str) -> PipelineConfig:
        return self._pipelines.get(location, {}).get(group, PipelineConfig())

    def record(self, location: str) -> dict[str, Any]:
        """What a run of ``location`` takes from the file, JSON-safe: its settings, pipelines
        and step modules (the alerting section stays out: recipients and gateway URLs are
        not for every run's log)."""
        pipelines = self._pipelines.get(location, {})
        return {
            "file": str(self.file) if self.file else None,
            "digest": self.digest,
            "settings": json.loads(json.dumps(self.section(location), default=str)),
            "pipelines": {g: p.model_dump(mode="json") for g, p in pipelines.items()},
            "steps": self.model.steps.model_dump(mode="json"),
        }


def _yaml_path(data: Any, loc: tuple[str | int, ...]) -> tuple[str, ...]:
    """``loc`` (pydantic's) as keys that exist in the file: a union's tag, a renamed key
    (``smtp_server`` for ``host``) and a list of one-key maps are followed, not taken
    literally."""
    path: list[str] = []
    for part in loc:
        key = str(part)
        if isinstance(data, Mapping):
            if key not in data:
                key = next((k for k, v in RENAMED.items() if v == key and k in data), "")
            if key in data:
                path.append(key)
                data = data[key]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            path.append(key)
            data = data[part]
        elif isinstance(data, list):  # a list of one-key maps read as one mapping
            i = next((i for i, m in enumerate(data) if isinstance(m, Mapping) and key in m), None)
            if i is not None:
                path += [str(i), key]
                data = data[i][key]
    return tuple(path)


def error_text(error: ValidationError, data: Any, where: Any, prefix: tuple = ()) -> str:
    """One line per problem: ``<where> : <dotted.key>: <reason>``."""
    lines = []
    for problem in error.errors():
        ours = problem["type"] == "platform_config"
        extra = problem.get("ctx", {}).get("key", "") if ours else ""
        loc = prefix + tuple(problem["loc"]) + tuple(p for p in str(extra).split(".") if p)
        loc = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in loc)
        path = _yaml_path(data, loc)
        text = problem["msg"] if problem["type"] != "extra_forbidden" else "unknown key"
        lines.append(f"{where(*path)}: {'.'.join(path) or '(top)'}: {text}")
    return "\n".join(lines)


def _refused_keys(data: Mapping[str, Any]) -> tuple[str, ...] | None:
    for key in REFUSED_KEYS:
        if key in data:
            return (key,)
    for name, section in (data.get("locations") or {}).items():
        for key in REFUSED_KEYS:
            if isinstance(section, Mapping) and key in section:
                return ("locations", name, key)
    return None


@functools.lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int, size: int) -> LoadedConfig:
    content = path.read_bytes()
    data = load_mapping(path, content, error=ConfigError)
    loaded = LoadedConfig(PlatformConfig(), path, hashlib.sha256(content).hexdigest())
    refused = _refused_keys(data)
    if refused:
        raise ConfigError(
            f"{loaded.where(*refused)}: {'.'.join(refused)}: not in the platform config; "
            "the environment sets storage (PLATFORM_DATA_ROOT)"
        )
    try:
        model = PlatformConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(error_text(error, data, loaded.where)) from None
    for name, section in model.locations.items():
        try:
            _PIPELINES.validate_python(section.get("pipelines", {}))
        except ValidationError as error:
            prefix = ("locations", name, "pipelines")
            raise ConfigError(error_text(error, data, loaded.where, prefix)) from None
    from platform_core.workspace import projects  # reads dg.toml

    for i, rule in enumerate(model.alerting.rules if model.alerting else []):
        for j, name in enumerate(rule.locations):
            if name not in projects():
                path = ("alerting", "rules", i, "locations", j)
                raise ConfigError(f"{loaded.where(*path)}: {'.'.join(map(str, path))}: "
                                  f"no such code location ({', '.join(projects())})")  # fmt: skip
    for name in model.locations:
        if name not in projects():
            known = ", ".join(projects())
            raise ConfigError(f"{loaded.where('locations', name)}: locations.{name}: "
                              f"no such code location ({known})")  # fmt: skip
    return LoadedConfig(model, path, loaded.digest)


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file: ``explicit`` (a CLI flag), else ``$PLATFORM_CONFIG``, else None."""
    value = explicit or os.environ.get(CONFIG_ENV)
    return Path(value).expanduser().resolve() if value else None


def load(path: str | Path | None = None) -> LoadedConfig:
    """The validated config (cached per file, mtime and size); the defaults without a file."""
    file = config_path(path)
    if file is None:
        return LoadedConfig(PlatformConfig(), None, "defaults")
    try:
        stat = file.stat()
    except OSError:
        raise ConfigError(f"{file}: no such platform config file ({CONFIG_ENV})") from None
    return _load(file, stat.st_mtime_ns, stat.st_size)


def use_file(path: str | Path) -> LoadedConfig:
    """Load ``path`` and make it this process's config (``$PLATFORM_CONFIG``, which spawned
    workers inherit)."""
    loaded = load(path)
    os.environ[CONFIG_ENV] = str(loaded.file)
    return loaded


def validate_location(
    cfg: LoadedConfig,
    location: str,
    resources: Sequence[type[BaseModel]],
    groups: Sequence[str],
    acts_on: Collection[str] = (),
) -> None:
    """ConfigError (file and line) unless every key of ``locations.<location>`` is a field of
    one of ``resources`` (the location's settings) or of ``CommonSettings`` and passes that
    model's own validation (types, ``Field`` bounds), and every ``pipelines.<group>`` is one
    of ``groups``; a pipeline's ``notify`` names configured channels."""
    section = cfg.section(location)
    known = {name: r for r in [CommonSettings, *resources] for name in r.model_fields}
    for key in section:
        path = ("locations", location, key)
        if key not in known:
            names = ", ".join(sorted([*known, "pipelines"]))
            raise ConfigError(f"{cfg.where(*path)}: {'.'.join(path)}: unknown key ({names})")
    for resource in dict.fromkeys(known.values()):
        given = {k: v for k, v in section.items() if k in resource.model_fields}
        try:
            resource.model_validate(given)
        except ValidationError as error:
            ours = [e for e in error.errors() if e["loc"] and e["loc"][0] in given]
            lines = []
            for problem in ours:  # a required field the file does not set is not its error
                path = ("locations", location, *map(str, problem["loc"]))
                lines.append(f"{cfg.where(*path[:3])}: {'.'.join(path)}: {problem['msg']}")
            if lines:
                raise ConfigError("\n".join(lines)) from None
    pipelines = cfg.model.locations.get(location, {}).get("pipelines", {})
    channels = cfg.model.alerting.channels if cfg.model.alerting else {}
    for group in pipelines:
        path = ("locations", location, "pipelines", group)
        if group not in groups:
            raise ConfigError(f"{cfg.where(*path)}: {'.'.join(path)}: no such pipeline "
                              f"(asset group) in {location} ({', '.join(groups)})")  # fmt: skip
        pipeline = cfg.pipeline(location, group)
        actions = pipeline.failure_actions
        given = [k for k in pipeline.model_fields_set if k != "failure_actions"]
        given += [f"failure_actions.{k}" for k in actions.model_fields_set]
        for key in given:
            if key not in GENERIC_PIPELINE_KEYS and key not in acts_on:
                path_of = (*path, *key.split("."))
                known = ", ".join(sorted({*GENERIC_PIPELINE_KEYS, *acts_on}))
                raise ConfigError(f"{cfg.where(*path_of)}: {'.'.join(path_of)}: {location} "
                                  f"does not act on it (it acts on: {known})")  # fmt: skip
        for i, name in enumerate(actions.notify):
            if name not in channels:
                key = (*path, "failure_actions", "notify")
                raise ConfigError(f"{cfg.where(*key)}: {'.'.join(key)}.{i}: channel "
                                  f"{name!r} is not configured in alerting.channels")  # fmt: skip
