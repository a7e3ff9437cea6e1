"""The step standard of the seed's orchestration guide, without Dagster.

A step is a function of a :class:`StepContext` that writes its files into ``ctx.out`` and
returns its outputs (paths relative to ``ctx.out``, metrics, and the verdicts of its quality
checks: ``{name: {"passed": bool, "description": str}}``). :func:`execute_step` runs it and
returns the seed's result record: ``status`` (completed / failed / skipped), ``output``
(``files_created``, ``metrics`` and step-specific values), ``errors``, ``warnings`` and
``metadata`` (``execution_time`` in seconds, ``memory_used`` in MB, tool time and versions).

A step skips by raising :class:`SkipStep` (e.g. no sample passed QC) and fails by raising
:class:`InputError` (bad input, with what and where) or a tool's ``ToolError``.

The user's own steps (``func: package.module:function``) return the seed's result record
themselves; :func:`standard_step` checks its shape when the step runs (what is wrong, named),
and :func:`check_step_signature` that the function takes the context, when it is loaded.
"""

from __future__ import annotations

import functools
import inspect
import logging
import resource
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from platform_core.tools import ToolError, ToolResult, program_version, require_program, run_tool

Status = Literal["completed", "failed", "skipped"]
# how a program prints its version, where not with --version
_VERSION_ARGS = {"gemma": ("-h",), "kallisto": ("version",), "art_illumina": (), "bwa": ()}


class InputError(ValueError):
    """Input a step cannot use; the message says what is wrong and where."""


class SkipStep(Exception):
    """A run-time skip: the step has nothing to do; downstream steps are skipped too."""


@dataclass
class StepContext:
    """What a step sees: its config, the workflow's shared settings and its inputs.

    - ``out``: an empty folder the step writes into (made final only if the step completes);
    - ``inputs``: the outputs of the steps it reads, by step name, with their folders;
    - ``enabled_steps``: the workflow's steps that run (a step may adapt to its neighbours);
    - ``timeout``: seconds any one tool call may take;
    - ``log``: the step's logger (DEBUG with the config's ``verbose: true``: tool command
      lines and their time).
    """

    step: str
    config: Mapping[str, Any]
    domain_specific: Mapping[str, Any]
    threads: int
    out: Path
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    input_dirs: Mapping[str, Path] = field(default_factory=dict)
    enabled_steps: frozenset[str] = frozenset()
    timeout: float = 3600.0
    warnings: list[str] = field(default_factory=list)
    tool_seconds: float = 0.0
    tool_peak_mb: float = 0.0
    tool_versions: dict[str, str] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("omics.step"))

    def run(self, argv: Sequence[str], cwd: Path | None = None) -> ToolResult:
        """Run a tool (no shell, one retry) and account its time and memory to the step."""
        self.log.debug(f"{self.step}: running {' '.join(map(str, argv))}")
        result = run_tool(argv, self.timeout, retries=1, cwd=cwd)
        self.log.debug(f"{self.step}: {Path(argv[0]).name} took {result.wall_seconds:.2f} s")
        self.tool_seconds += result.wall_seconds
        self.tool_peak_mb = max(self.tool_peak_mb, result.peak_memory_mb)
        return result

    def program(self, name: str) -> str:
        """The path of a tool (ToolError when it is not installed); its version is recorded
        with the step's result."""
        path = require_program(name)
        self.tool_versions[name] = program_version(path, _VERSION_ARGS.get(name, ("--version",)))
        return path

    def input_file(self, step: str, name: str) -> Path:
        """A file an upstream step created (``name`` as it listed it)."""
        return self.input_dirs[step] / self.inputs[step]["files"][name]

    def has_input(self, step: str) -> bool:
        return step in self.inputs


StepFunction = Callable[[StepContext], dict[str, Any]]


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passed: bool
    description: str = ""


class StandardOutput(BaseModel):
    """``output`` of a result record: ``files`` (name -> path relative to ``ctx.out``),
    ``metrics`` (numbers and strings) and any values of the step's own."""

    model_config = ConfigDict(extra="allow")
    files: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float | str | bool | None] = Field(default_factory=dict)


class StandardResult(BaseModel):
    """The seed's step result record, as a user's step returns it; ``checks`` holds the
    verdicts of the quality checks the step declares, ``reason`` why it skipped."""

    model_config = ConfigDict(extra="forbid")
    status: Status
    output: StandardOutput = Field(default_factory=StandardOutput)
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    checks: dict[str, Verdict] = Field(default_factory=dict)
    reason: str = ""


class ContractError(InputError):
    """A user's step function that broke the step standard (signature or result)."""


def check_step_signature(function: Callable[..., Any], func: str) -> None:
    """ContractError unless ``function`` can be called with the step context alone."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        raise ContractError(f"func {func!r}: its signature cannot be read") from None
    try:
        signature.bind(None)
    except TypeError:
        raise ContractError(
            f"func {func!r} has the signature {signature}: a step function takes one "
            "argument, the StepContext"
        ) from None


def standard_step(function: Callable[[StepContext], Any], func: str) -> StepFunction:
    """The user's ``function`` (named ``func``) as a step: its result record is checked
    (ContractError naming what is wrong, and a file it lists that is not in ``ctx.out``);
    ``skipped`` skips and ``failed`` fails the step with the errors it gave."""

    @functools.wraps(function)
    def run(ctx: StepContext) -> dict[str, Any]:
        value = function(ctx)
        try:
            result = StandardResult.model_validate(value)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'the result'}: {e['msg']}"
                for e in error.errors()
            )
            raise ContractError(
                f"func {func!r} returned a result that is not the step result standard "
                f"({problems}); expected a mapping of status (completed, failed or skipped), "
                "output {files, metrics}, errors, warnings, metadata"
            ) from None
        out = ctx.out.resolve()
        for name, relative in result.output.files.items():
            path = (out / relative).resolve()
            if not path.is_relative_to(out) or not path.is_file():
                raise ContractError(
                    f"func {func!r} lists output file {name}: {relative!r}, which is not a file "
                    f"in the step's folder {ctx.out}"
                )
        ctx.warnings.extend(result.warnings)
        if result.status == "skipped":
            raise SkipStep(result.reason or "; ".join(result.warnings) or f"{func} skipped")
        if result.status == "failed":
            raise InputError("; ".join(result.errors) or f"{func} failed without an error")
        checks = {name: verdict.model_dump() for name, verdict in result.checks.items()}
        return {**result.output.model_dump(), "checks": checks, "step_metadata": result.metadata}

    return run


def _memory_mb() -> float:
    """Peak resident memory of this process, MB (a tool's own peak is ``tool_peak_mb``)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return own / 1024


def execute_step(function: StepFunction, ctx: StepContext) -> dict[str, Any]:
    """Run one step; return the seed's result record (never raises for a step's own error)."""
    started = time.perf_counter()
    status: Status = "completed"
    errors: list[str] = []
    output: dict[str, Any] = {}
    reason = ""
    retryable = False
    try:
        output = function(ctx)
    except SkipStep as skip:
        status, reason = "skipped", str(skip)
    except (InputError, ToolError, FileNotFoundError) as error:
        status, errors = "failed", [str(error)]
        retryable = isinstance(error, ToolError)  # a tool may fail once; bad input stays bad
    except Exception as error:  # a bug: keep the traceback for whoever reads the failure
        status = "failed"
        errors = [f"{type(error).__name__}: {error}", traceback.format_exc(limit=4)]
    files = output.pop("files", {})
    metrics = output.pop("metrics", {})
    checks = output.pop("checks", {})
    result: dict[str, Any] = {
        "status": status,
        "output": {"files_created": sorted(files.values()), "files": files, "metrics": metrics}
        | output,
        "errors": errors,
        "warnings": list(ctx.warnings),
        "checks": checks,
        "metadata": {
            "execution_time": round(time.perf_counter() - started, 3),
            "memory_used": round(max(_memory_mb(), ctx.tool_peak_mb), 1),
            "tool_seconds": round(ctx.tool_seconds, 3),
            "tool_versions": dict(ctx.tool_versions),
        },
    }
    if reason:
        result["reason"] = reason
    if status == "failed":
        result["retryable"] = retryable
    return result
