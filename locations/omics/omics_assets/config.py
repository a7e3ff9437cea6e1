"""The config hierarchy of a workflow run, each layer over the one before:

1. base defaults of the domain (``omics_assets/defaults/<domain>.yaml``);
2. the workflow's definition (its component YAML under ``omics_assets/defs/``);
3. environment overrides, per domain: ``OMICS_<DOMAIN>__<KEY>``, ``__`` between levels
   (``OMICS_GWAS__STEPS__QC__CONFIG__MAF=0.05`` reaches gwas workflows only), and the keys
   every domain has: ``OMICS_THREADS``, ``OMICS_VERBOSE``, ``OMICS_WORK_DIR``; values are YAML
   scalars. Any other ``OMICS_*`` variable that is not a setting is ignored, with a warning
   naming it;
4. the user's ``--config FILE.yaml``;
5. command-line ``--param a.b.c=value``, applied last (the key must exist).

Every layer is checked for unknown keys before it is merged (the error names the key, the
keys known there, and the file and line, variable or argument it came from); the merged
config is validated per domain (types and ranges) and errors name where the bad value was set.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from omics_assets.science.domains import DOMAINS, Domain, config_model, input_paths
from platform_core.yamldoc import load_mapping, yaml_line

DEFAULTS_DIR = Path(__file__).parent / "defaults"
ENV_PREFIX = "OMICS_"
# OMICS_* variables that are settings of the location, not config keys
ENV_SETTINGS = frozenset(
    {
        "OMICS_TOOL_TIMEOUT_SECONDS",
        "OMICS_INBOX_SETTLE_SECONDS",
        "OMICS_MAX_INPUT_MB",
        "OMICS_WORKFLOWS_DIR",
    }
)
ENV_SHARED_KEYS = {"THREADS": "threads", "VERBOSE": "verbose", "WORK_DIR": "work_dir"}
Path_ = tuple[str, ...]
log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and where it was set."""


@dataclass
class Layer:
    """One layer: its values, what it is (shown in errors) and, for a YAML file, where keys
    sit (``prefix``: the path of the values inside the file, e.g. a component's attributes)."""

    source: str
    data: dict[str, Any]
    file: Path | None = None
    prefix: Path_ = ()
    origins: dict[Path_, str] = field(default_factory=dict)

    def where(self, path: Path_) -> str:
        if self.file is None:
            return self.origins.get(path, self.source)
        line = yaml_line(self.file, self.prefix + path)
        return f"{self.file}" + (f" line {line}" if line else "")


def yaml_file(path: Path, source: str | None = None, content: bytes | None = None) -> Layer:
    """A YAML file (``content``: its bytes, already read) as a layer; ConfigError (file and
    line) if it is not a YAML mapping (``yamldoc.load_mapping``: no aliases, no key twice)."""
    return Layer(source or str(path), load_mapping(path, content, error=ConfigError), file=path)


@functools.cache  # read once per process (layers are merged as copies, never changed)
def defaults(domain: Domain) -> Layer:
    return yaml_file(DEFAULTS_DIR / f"{domain}.yaml", f"defaults/{domain}.yaml")


def _nest(path: Path_, value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path):
        out = {key: out}
    return out


def _env_path(name: str, domain: Domain) -> Path_ | None:
    """The config key an ``OMICS_*`` variable sets for ``domain``; None for another
    domain's, a setting, or a variable that is neither (that one logged as ignored)."""
    rest = name[len(ENV_PREFIX) :]
    if name in ENV_SETTINGS:
        return None
    if rest in ENV_SHARED_KEYS:
        return (ENV_SHARED_KEYS[rest],)
    scope, sep, key = rest.partition("__")
    if sep and key and scope.lower() in DOMAINS:
        return tuple(key.lower().split("__")) if scope.lower() == domain else None
    log.warning(  # not a run's error: an operator's typo would fail every run and drop
        f"environment variable {name} ignored: not an omics config key. Every domain has "
        f"{', '.join(ENV_PREFIX + k for k in ENV_SHARED_KEYS)}; the rest is per domain: "
        f"OMICS_<DOMAIN>__<KEY> with DOMAIN one of {', '.join(d.upper() for d in DOMAINS)} "
        "(e.g. OMICS_GWAS__STEPS__QC__CONFIG__MAF=0.05)"
    )
    return None


def env_layer(domain: Domain, environ: Mapping[str, str] | None = None) -> Layer:
    """The ``OMICS_*`` variables that reach ``domain``'s workflows as a layer (keys
    lower-cased, ``__`` between levels)."""
    environ = os.environ if environ is None else environ
    layer = Layer("environment", {})
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        path = _env_path(name, domain)
        if path is None:
            continue
        layer.data = merge(layer.data, _nest(path, yaml.safe_load(environ[name])))
        layer.origins[path] = f"environment variable {name}"
    return layer


def param_layer(params: Sequence[str], base: Mapping[str, Any]) -> Layer:
    """``a.b.c=value`` arguments as a layer; each key must exist in ``base`` (the config the
    lower layers resolved), so a typo never silently adds a key."""
    layer = Layer("--param", {})
    for param in params:
        key, sep, text = param.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {param!r}: expected KEY=VALUE (e.g. threads=4)")
        path = tuple(key.split("."))
        node: Any = base
        for depth, part in enumerate(path):
            if not isinstance(node, Mapping) or part not in node:
                parent = ".".join(path[:depth]) or "the config"
                known = ", ".join(sorted(node)) if isinstance(node, Mapping) else "none"
                raise ConfigError(f"--param {param}: {parent} has no key {part!r} (known: {known})")
            node = node[part]
        layer.data = merge(layer.data, _nest(path, yaml.safe_load(text)))
        layer.origins[path] = f"--param {param}"
    return layer


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``over`` replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``Model`` or ``Model | None``, else None (a leaf value)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(filter(None, map(_model_of, typing.get_args(annotation))), None)
    return None


def check_keys(layer: Layer, model: type[BaseModel], path: Path_ = ()) -> None:
    """ConfigError for the first key of ``layer`` the model does not know."""
    node: Any = layer.data
    for key in path:
        node = node[key]
    if not isinstance(node, Mapping):
        return
    if model.model_config.get("extra") == "allow":  # the user's own keys
        return
    fields = model.model_fields
    for key, value in node.items():
        if key not in fields:
            where = ".".join((*path, str(key)))
            raise ConfigError(
                f"{where}: unknown key ({layer.where((*path, str(key)))}); "
                f"known there: {', '.join(fields)}"
            )
        inner = _model_of(fields[key].annotation)
        if inner is not None and isinstance(value, Mapping):
            check_keys(layer, inner, (*path, key))


@dataclass(frozen=True)
class Resolved:
    """A validated config and, per key, the layer that set it last."""

    config: dict[str, Any]
    setters: dict[Path_, Layer]

    @property
    def origins(self) -> dict[Path_, str]:
        """Per key, where it was set last (file and line, variable or argument); computed
        when asked (each line is a parse of its file)."""
        return {path: layer.where(path) for path, layer in self.setters.items()}


def _leaves(data: Mapping[str, Any], path: Path_ = ()) -> list[Path_]:
    out: list[Path_] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out += _leaves(value, (*path, key))
        else:
            out.append((*path, key))
    return out


def absolute_paths(domain: Domain, layer: Layer) -> dict[str, Any]:
    """The layer's values with relative file paths in ``domain_specific`` made absolute:
    relative to the YAML file that sets them, else to the working directory."""
    inputs = layer.data.get("domain_specific")
    if not isinstance(inputs, Mapping):
        return layer.data
    base = layer.file.parent if layer.file else Path.cwd()
    fixed = copy.deepcopy(dict(inputs))
    for keys, value in input_paths(domain, inputs).items():
        if isinstance(value, str) and value:  # ~ expanded; relative: to the setter's file
            parent = functools.reduce(lambda node, key: node[key], keys[:-1], fixed)
            path = Path(value).expanduser()
            parent[keys[-1]] = str(path if path.is_absolute() else (base / path).resolve())
    return {**layer.data, "domain_specific": fixed}


def _origin(loc: Path_, setters: Mapping[Path_, Layer], layers: Sequence[Layer]) -> str:
    """Where the value at ``loc`` (an error's location) was set: the last layer that set it
    or a key under it (a mapping the user filled in, over the defaults' empty one), else the
    nearest key above it that a layer set."""
    for n in range(len(loc), 0, -1):
        under = [(key, layer) for key, layer in setters.items() if key[:n] == loc[:n]]
        if under:
            key, layer = max(under, key=lambda item: layers.index(item[1]))
            return layer.where(key)
    return "the merged config"


def resolve(domain: Domain, layers: Sequence[Layer], custom: tuple[str, ...] = ()) -> Resolved:
    """Merge the layers over the domain's defaults and validate the result; ``custom``: the
    workflow's own steps."""
    if domain not in DOMAINS:
        raise ConfigError(f"domain {domain!r} is not one of {', '.join(DOMAINS)}")
    model = config_model(domain, custom)
    merged: dict[str, Any] = {}
    setters: dict[Path_, Layer] = {}  # where a key was set, named only for an error
    for layer in (defaults(domain), *layers):
        check_keys(layer, model)
        merged = merge(merged, absolute_paths(domain, layer))
        for leaf in _leaves(layer.data):
            setters[leaf] = layer
    try:
        config = model.model_validate(merged).model_dump(mode="json")
    except ValidationError as error:
        problems = []
        for item in error.errors():
            loc = tuple(str(part) for part in item["loc"])
            origin = _origin(loc, setters, [defaults(domain), *layers])
            shown = f" = {item['input']!r}" if not isinstance(item["input"], dict) else ""
            problems.append(f"{'.'.join(loc)}{shown} ({origin}): {item['msg']}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems)) from None
    return Resolved(config, setters)
