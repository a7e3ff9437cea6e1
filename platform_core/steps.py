"""Which step functions a pipeline or workflow may name: no code from a dropped file.

A pipeline or workflow that the daemon, its code server or the UI loads may name two kinds of
step: a shipped step (by name) and ``module:function`` from a module the operator registered
in ``PLATFORM_STEP_MODULES`` (a comma list of module names or prefixes: ``mylab`` allows
``mylab.steps``; unset: the platform config's ``steps.modules``). Anything else is refused
before any import, naming the step and the rule.
An unregistered module is allowed only where the user already runs their own code: the CLI
and the Python API, in the user's own process (``confine.user_process``). A file dropped into
an inbox never defines steps at all (``refuse_dropped_steps``).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from platform_core import platform_config
from platform_core.confine import in_user_process
from platform_core.keys import comma_list
from platform_core.yamldoc import yaml_line

STEP_MODULES_ENV = "PLATFORM_STEP_MODULES"
_REFERENCE = re.compile(
    r"^(?P<module>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$"
)


class StepNotAllowedError(ValueError):
    """A step function that may not be loaded here, or cannot be."""


def registered_step_modules() -> tuple[str, ...]:
    """The operator's step modules: ``PLATFORM_STEP_MODULES`` when set, else the platform
    config's ``steps.modules``."""
    if os.environ.get(STEP_MODULES_ENV):
        return tuple(comma_list(os.environ[STEP_MODULES_ENV]))
    return tuple(platform_config.load().model.steps.modules)


def module_registered(module: str, registered: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in registered)


def resolve_step(
    func: str,
    shipped: Mapping[str, Callable[..., Any]],
    step: str,
    where: str,
    user_code: bool | None = None,
) -> Callable[..., Any]:
    """The function step ``step`` (declared in ``where``) names: a shipped step by name, or
    ``module:function``. The module must be registered unless ``user_code`` (default: this is
    the user's own process); checked before the module is imported."""
    if func in shipped:
        return shipped[func]
    match = _REFERENCE.fullmatch(func) if isinstance(func, str) else None
    if match is None:
        raise StepNotAllowedError(
            f"step {step!r} ({where}): func {func!r} is neither a shipped step "
            f"({', '.join(sorted(shipped)) or 'none'}) nor 'package.module:function'"
        )
    module, name = match["module"], match["name"]
    registered = registered_step_modules()
    trusted = in_user_process() if user_code is None else user_code
    if not trusted and not module_registered(module, registered):
        raise StepNotAllowedError(
            f"step {step!r} ({where}): func {func!r} refused before import: what the daemon, "
            f"its code server or the UI loads may name only shipped steps "
            f"({', '.join(sorted(shipped)) or 'none'}) and functions of the modules in "
            f"{STEP_MODULES_ENV} (registered: {', '.join(registered) or 'none'}). Run it from "
            "the CLI or the Python API in your own process, or have the operator register "
            f"{module.split('.')[0]!r}"
        )
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise StepNotAllowedError(
            f"step {step!r} ({where}): func {func!r} cannot be imported ({error})"
        ) from None
    if not inspect.isfunction(function):
        raise StepNotAllowedError(f"step {step!r} ({where}): func {func!r} is not a function")
    if not trusted and not module_registered(function.__module__, registered):
        raise StepNotAllowedError(
            f"step {step!r} ({where}): func {func!r} is {function.__module__}."
            f"{function.__qualname__}, re-exported from a module not in {STEP_MODULES_ENV}"
        )
    return function


def step_functions(
    document: Any, path: tuple[str, ...] = (), seen: set[int] | None = None
) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    """(key path, step name, value) of every ``func`` key anywhere in a parsed YAML document;
    the step is the mapping's ``name`` (a list of steps) or its key (a mapping of steps). A
    node reached again through a YAML alias is walked once (no "billion laughs")."""
    seen = set() if seen is None else seen
    if isinstance(document, Mapping | list):
        if id(document) in seen:
            return
        seen.add(id(document))
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key == "func":
                name = document.get("name", path[-1] if path else "?")
                yield (*path, "func"), str(name), value
            yield from step_functions(value, (*path, str(key)), seen)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from step_functions(value, (*path, str(index)), seen)


def refuse_dropped_steps(document: Any, file: Path) -> None:
    """StepNotAllowedError if a file dropped into an inbox declares any step function: a
    dropped file names a loaded pipeline or workflow, it never brings code."""
    for key_path, step, value in step_functions(document):
        line = yaml_line(file, key_path)
        raise StepNotAllowedError(
            f"{file}{f' line {line}' if line else ''}: step {step!r} names func {value!r}: a "
            "file dropped into an inbox never defines steps (it may only name a loaded "
            "pipeline or workflow); steps come from shipped modules or the operator's "
            f"{STEP_MODULES_ENV}"
        )
