"""One asset per enabled step of a workflow: run the step's science function, map its result
record onto Dagster (materialization, skip, failure) and reuse a completed step whose code,
config and inputs are unchanged.

A step's files live in ``<work root>/steps/<step>/<fingerprint>/`` (content-addressed: every
run with the same inputs shares them). They are written to a staging folder and renamed into
place only when the step completes, so a failed or killed step never leaves a folder that
looks complete, and earlier results stay as they were.
"""

import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from omics_assets.assets.upstream import upstream_deps, upstream_values
from omics_assets.inputs import check_untrusted_paths, registered_config
from omics_assets.resources import OmicsSettings
from omics_assets.science.domains import Step
from omics_assets.science.steps import StepContext, execute_step
from omics_assets.workflows import RESULT_FILE, WorkflowDefinition, step_fingerprint, step_folder
from platform_core.checkpoint import FINGERPRINT_KEY
from platform_core.confine import ConfinementError, InputTooLargeError
from platform_core.datastore import DataStore
from platform_core.figures import markdown_image
from platform_core.io import write_json

STATUS_CHECK = "step_status"
RETRY = dg.RetryPolicy(max_retries=1, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def _metadata(
    result: Mapping[str, Any], folder: Path, config: Mapping[str, Any], fp: str, reused: bool
) -> dict[str, Any]:
    output, meta = result["output"], result["metadata"]
    metrics = {
        f"metric/{k}": v for k, v in output["metrics"].items() if isinstance(v, (int, float, str))
    }
    plots = [
        markdown_image((folder / name).read_bytes(), name)
        for name in output["files"].values()
        if name.endswith(".png")
    ]
    extra = {}
    if (folder / "report.md").exists():
        extra["report"] = dg.MetadataValue.md(
            "\n\n".join([(folder / "report.md").read_text(), *plots])
        )
    elif plots:
        extra["plots"] = dg.MetadataValue.md("\n\n".join(plots))
    return {
        "status": "reused" if reused else result["status"],
        "execution_time_s": meta["execution_time"],
        "memory_used_mb": meta["memory_used"],
        "tool_seconds": meta["tool_seconds"],
        "tool_versions": dg.MetadataValue.json(meta["tool_versions"]),
        "files_created": dg.MetadataValue.json(output["files_created"]),
        "warnings": "; ".join(result["warnings"]) or "none",
        "step_result": dg.MetadataValue.json(dict(result)),
        "config": dg.MetadataValue.json(dict(config)),
        "output_dir": dg.MetadataValue.path(str(folder)),
        FINGERPRINT_KEY: fp,
        **metrics,
        **extra,
    }


def build_step_asset(
    definition: WorkflowDefinition,
    step: Step,
    reads: tuple[str, ...],
    partitions_def: dg.DynamicPartitionsDefinition,
) -> dg.AssetsDefinition:
    """The asset ``<workflow>/<step>``; ``reads``: the enabled steps of the workflow it reads
    (its inputs) and the ``workflow.step`` of upstream workflows (deps, read from the run of
    that workflow its ``inputs:`` names)."""
    key = dg.AssetKey([definition.name, step.name])
    ins = {name: dg.AssetIn(key=[definition.name, name]) for name in reads if "." not in name}
    cross = tuple(r for r in reads if "." in r)

    @dg.asset(
        key=key,
        ins=ins,
        partitions_def=partitions_def,
        group_name=definition.name,
        description=step.description,
        code_version=step.code_version,
        output_required=False,
        check_specs=[
            dg.AssetCheckSpec(
                STATUS_CHECK, asset=key, description="completed, or why the step was skipped"
            ),
        ],
        deps=upstream_deps(cross, definition.inputs),
        retry_policy=RETRY,
        required_resource_keys={"omics", "storage"},
        pool="omics_tools" if step.tools else None,  # a tool step: one at a time (dagster.yaml)
        kinds={"python", *step.tools[:2]},
        metadata={"domain": definition.domain, "definition": str(definition.file)},
    )
    def step_asset(context: dg.AssetExecutionContext, **inputs: dict) -> Iterator[Any]:
        settings: OmicsSettings = context.resources.omics
        store: DataStore = context.resources.storage
        config = registered_config(store, definition, context.partition_key)
        toggle = config["steps"][step.name]
        if not toggle["enabled"]:
            yield _skipped(key, f"step {step.name} is disabled by the run's config")
            return
        try:  # paths a dropped config set: confined again now (files may have changed)
            config = check_untrusted_paths(store, config, settings.max_input_mb)
        except (ConfinementError, InputTooLargeError, ValueError) as error:
            raise dg.Failure(
                f"{definition.name}/{step.name}: {error}", allow_retries=False
            ) from None
        fps = {n: v["fingerprint"] for n, v in inputs.items()}
        read_runs: dict[str, str] = {}
        if cross:
            found = upstream_values(context.instance, config["inputs"], cross)
            if isinstance(found, str):
                raise dg.Failure(f"{definition.name}/{step.name}: {found}", allow_retries=False)
            inputs = {**inputs, **{r.rpartition(".")[2]: v for r, v in found.items()}}
            fps |= {r: v["fingerprint"] for r, v in found.items()}
            read_runs = {r.rpartition(".")[0]: v["run"] for r, v in found.items()}
        fp = step_fingerprint(step, config, fps)
        final = step_folder(store, config, step.name, fp)
        if (final / RESULT_FILE).exists():
            result, reused = json.loads((final / RESULT_FILE).read_text()), True
        else:
            result, reused = _execute(context, step, config, inputs, final, settings), False
        if result["status"] == "skipped":
            yield _skipped(key, result["reason"])
            return
        if result["status"] == "failed":
            raise dg.Failure(
                description=f"{definition.name}/{step.name}: " + "\n".join(result["errors"]),
                metadata={"step_result": dg.MetadataValue.json(result)},
                allow_retries=bool(result.get("retryable")),
            )
        value = {
            "step": step.name,
            "dir": str(final),
            "fingerprint": fp,
            "files": result["output"]["files"],
            "metrics": result["output"]["metrics"],
        }
        metadata = _metadata(result, final, config, fp, reused)
        if read_runs:  # which upstream runs this one read
            metadata["upstream_runs"] = dg.MetadataValue.json(read_runs)
        yield dg.Output(value, metadata=metadata, data_version=dg.DataVersion(fp))
        yield dg.AssetCheckResult(
            check_name=STATUS_CHECK,
            asset_key=key,
            passed=True,
            metadata={
                "status": "reused" if reused else "completed",
                "warnings": "; ".join(result["warnings"]) or "none",
            },
        )

    return step_asset


def _skipped(key: dg.AssetKey, reason: str) -> dg.AssetCheckResult:
    """A run-time skip: no materialization (so the steps after it do not run), a WARN check
    with the reason; the run succeeds."""
    return dg.AssetCheckResult(
        check_name=STATUS_CHECK,
        asset_key=key,
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"status": "skipped", "reason": reason},
        description=reason,
    )


class _ToDagster(logging.Handler):
    """A step's log records into the run's event log, at their level."""

    def __init__(self, context: dg.AssetExecutionContext) -> None:
        super().__init__()
        self.context = context

    def emit(self, record: logging.LogRecord) -> None:
        self.context.log.log(record.levelno, record.getMessage())


def _step_logger(context: dg.AssetExecutionContext, step: str, verbose: bool) -> logging.Logger:
    """The step's logger: DEBUG with ``verbose: true`` (tool command lines and their time),
    else INFO; what it logs goes to the run's event log."""
    logger = logging.getLogger(f"omics.step.{step}")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    logger.handlers = [_ToDagster(context)]
    return logger


def _execute(
    context: dg.AssetExecutionContext,
    step: Step,
    config: Mapping[str, Any],
    inputs: Mapping[str, dict],
    final: Path,
    settings: OmicsSettings,
) -> dict[str, Any]:
    """Run the step in a staging folder; rename it into place only if it completed."""
    staging = final.with_name(f".{final.name}.{context.run.run_id[:8]}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    logger = _step_logger(context, step.name, bool(config["verbose"]))
    ctx = StepContext(
        log=logger,
        step=step.name,
        config=config["steps"][step.name]["config"],
        domain_specific=config["domain_specific"],
        threads=int(config["threads"]),
        out=staging,
        inputs={name: value for name, value in inputs.items()},
        input_dirs={name: Path(value["dir"]) for name, value in inputs.items()},
        enabled_steps=frozenset(s for s, t in config["steps"].items() if t["enabled"]),
        timeout=settings.tool_timeout_seconds,
    )
    context.log.info(f"{step.name}: running in {staging}")
    logger.debug(f"{step.name}: config {json.dumps(ctx.config)}")
    try:
        result = execute_step(step.run, ctx)
    finally:
        logger.handlers.clear()
    if result["status"] != "completed":
        shutil.rmtree(staging, ignore_errors=True)
        return result
    write_json(staging / RESULT_FILE, result)
    try:
        os.replace(staging, final)
    except OSError:  # another run completed the same step first: its result is the same
        shutil.rmtree(staging, ignore_errors=True)
    return result
