"""The step standard of the seed's orchestration guide, without Dagster.

A step is a function of a :class:`StepContext` that writes its files into ``ctx.out`` and
returns its outputs (paths relative to ``ctx.out``, metrics, and the verdicts of its quality
checks: ``{name: {"passed": bool, "description": str}}``). :func:`execute_step` runs it and
returns the seed's result record: ``status`` (completed / failed / skipped), ``output``
(``files_created``, ``metrics`` and step-specific values), ``errors``, ``warnings`` and
``metadata`` (``execution_time`` in seconds, ``memory_used`` in MB, tool time and versions).

A step skips by raising :class:`SkipStep` (e.g. no sample passed QC) and fails by raising
:class:`InputError` (bad input, with what and where) or a tool's ``ToolError``.
"""

from __future__ import annotations

import resource
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from platform_core.tools import ToolError, ToolResult, program_version, require_program, run_tool

Status = Literal["completed", "failed", "skipped"]
# how a program prints its version, where not with --version
_VERSION_ARGS = {"gemma": ("-h",), "kallisto": ("version",), "art_illumina": ()}


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
    - ``timeout``: seconds any one tool call may take.
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

    def run(self, argv: Sequence[str], cwd: Path | None = None) -> ToolResult:
        """Run a tool (no shell, one retry) and account its time and memory to the step."""
        result = run_tool(argv, self.timeout, retries=1, cwd=cwd)
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
