"""What a domain declares: its steps (:class:`Step`) and the typed models of its
configuration (every model refuses unknown keys). Each domain module (``rnaseq``, ``dna``, ...)
builds its own from these; :mod:`omics_assets.science.domains` registers them."""

from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict

from omics_assets.science.steps import StepFunction

# A file path in a config: relative paths are relative to the file that sets them (or, set by
# an environment variable or --param, to the working directory).
FilePath = Annotated[str | None, "path"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoConfig(Strict):
    """A step without parameters."""


class Open(BaseModel):
    """The user's own values (a custom step's config, a custom workflow's inputs): any keys."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class Step:
    """One step: its function, the steps it reads (``needs``: a step of the workflow, or
    ``workflow.step`` of an upstream workflow), its parameters' model. A ``required`` step
    cannot be disabled (every other step reads it). ``func``: the user's ``module:function``
    of a custom step ("" for a shipped one)."""

    name: str
    run: StepFunction
    needs: tuple[str, ...]
    config: type[BaseModel]
    tools: tuple[str, ...] = ()
    required: bool = False
    checks: tuple[tuple[str, str], ...] = ()  # (name, what it checks): WARN when it fails
    func: str = ""
    export: tuple[str, ...] = ()  # the columns `omics export` writes of its first TSV (all: ())

    @property
    def description(self) -> str:
        return (inspect.getdoc(self.run) or self.name).split("\n\n")[0].replace("\n", " ")

    @functools.cached_property
    def code_version(self) -> str:
        """Hash of the source of the step's module and of the modules of its package that
        it uses (``mixed_model`` for ``gwas``): a change of code is a new version."""
        module = inspect.getmodule(inspect.unwrap(self.run))
        assert module is not None
        package = module.__name__.rpartition(".")[0]
        used = {module.__name__: module}
        for value in vars(module).values():
            found = value if inspect.ismodule(value) else inspect.getmodule(value)
            if found is not None and found.__name__.startswith(f"{package}."):
                used.setdefault(found.__name__, found)
        sources = "".join(inspect.getsource(used[name]) for name in sorted(used))
        return hashlib.sha256(sources.encode()).hexdigest()[:12]
