"""Resources configured from environment variables (the only place secrets come from)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

import dagster as dg

Resource = TypeVar("Resource", bound=dg.ConfigurableResource)


def resource_from_env(cls: type[Resource], env: Mapping[str, str], **given: object) -> Resource:
    """``cls`` with each field whose variable (``env``: field -> variable) is set given as a
    ``dg.EnvVar``: the value is read at run time where the step or sensor runs, and the UI and
    GraphQL show only the variable's name, so a secret (SMTP password, webhook URL with its
    token) never leaves the process. Unset fields keep the resource's defaults; ``given``
    fields are set as they are (nested resources). A float or bool setting is read here, at
    definition time (Dagster has no EnvVar for them)."""
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
