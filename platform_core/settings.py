"""Resources configured from the platform config file and the environment (the only place
secrets come from)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

import dagster as dg
from pydantic import TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

Resource = TypeVar("Resource", bound=dg.ConfigurableResource)


def resource_from_env(cls: type[Resource], env: Mapping[str, str], **given: object) -> Resource:
    """``cls`` with each field whose variable (``env``: field -> variable) is set given as a
    ``dg.EnvVar`` on the instance: the value is read at run time where the step or sensor
    runs, and the UI and GraphQL show the field as the variable's name (type ENV_VAR), so a
    secret (SMTP password, webhook URL with its token) never leaves the process. Unset fields
    keep the resource's defaults; ``given`` fields are set as they are (nested resources). A
    float or bool setting is read here, at definition time (Dagster has no EnvVar for them).
    For the notifier; a location's settings use ``resource_from_layers``."""
    fields: dict[str, object] = {}
    for field, name in env.items():
        if os.environ.get(name):
            annotation = cls.model_fields[field].annotation
            if annotation is int:
                fields[field] = dg.EnvVar.int(name)
            elif annotation in (float, bool):  # no EnvVar for these: a limit, never a secret
                fields[field] = os.environ[name]
            else:
                fields[field] = dg.EnvVar(name)
    return cls(**fields, **given)


def resource_from_layers(
    cls: type[Resource],
    env: Mapping[str, str],
    file_values: Mapping[str, object],
    **given: object,
) -> Resource:
    """``cls`` with its layers, each over the one before: the class's defaults, then
    ``file_values`` (the platform config file's), then each field whose variable (``env``:
    field -> variable) is set, then run config (CLI flags, the UI). The layers are the
    defaults of a same-named subclass's fields, not values of the instance: Dagster replaces
    an instance's values wholesale with any run config of the resource, but fills each field
    that run config leaves out from its default. A set variable is the default
    ``{"env": NAME}``, read at run time where the step or sensor runs, so the UI and GraphQL
    show only the variable's name and a secret (SMTP password, webhook URL with its token)
    never leaves the process. A float or bool setting is read here, at definition time
    (Dagster has no env source for them). ``given`` fields are set as they are (nested
    resources)."""
    values: dict[str, Any] = {k: v for k, v in file_values.items() if k in cls.model_fields}
    for name, variable in env.items():
        if os.environ.get(variable):
            annotation = cls.model_fields[name].annotation
            if annotation in (float, bool):  # no env source for these: a limit, never a secret
                values[name] = _env_value(cls, name, variable)
            else:
                values[name] = {"env": variable}
    layers = {  # each field keeps its description and constraints, with a new default
        name: (cls.model_fields[name].annotation, FieldInfo.merge_field_infos(
            cls.model_fields[name], default=value))
        for name, value in values.items()
    }  # fmt: skip
    if not layers:
        return cls(**given)
    layered = create_model(cls.__name__, __base__=cls, __module__=cls.__module__, **layers)
    return layered(**given)


def _env_value(cls: type[Resource], name: str, variable: str) -> Any:
    """``$variable`` as field ``name`` of ``cls`` takes it, its bounds checked; a value the
    field refuses is a ConfigError naming the variable."""
    from platform_core.platform_config import ConfigError

    raw = os.environ[variable]
    try:
        value = TypeAdapter(cls.model_fields[name].annotation).validate_python(raw)
        cls.model_validate({name: value})
    except ValidationError as error:
        ours = [e["msg"] for e in error.errors() if e["loc"] in ((), (name,))]
        if ours:
            raise ConfigError(f"${variable}={raw!r}: {name}: {ours[0]}") from None
        return value
    return value
