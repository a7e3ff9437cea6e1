"""The omics location from Python, as the seed's ``execute_*`` functions offer it::

    from omics_assets.api import execute_workflow, execute_domain_workflow, workflow_status

    results = execute_workflow("my_study.yaml", params=["steps.qc.config.maf=0.05"])
    results["association"]["output"]["metrics"]["lambda_gc"]
    execute_domain_workflow("gwas", {"domain_specific": {...}}, work_dir="my_gwas")
    workflow_status("my_study")     # or the file of an unsaved workflow of your own

A run takes the CLI's path (``omics run --here``): the config is resolved through the same
layers, registered, and run through Dagster in this process, recorded in the instance at
``$DAGSTER_HOME`` (the UI shows it). A config whose name no loaded workflow has is a workflow
of your own (its step functions may come from any module: this is your process). Each
function returns the seed's step result records by step: ``status`` (completed, reused,
failed, skipped, not run), ``output``, ``errors``, ``warnings``, ``metadata``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from omics_assets.config import ConfigError, Layer, absolute_paths
from omics_assets.science.domains import DOMAINS, Domain

__all__ = [
    "definitions_with",
    "execute_domain_workflow",
    "execute_workflow",
    "workflow_status",
]


def definitions_with(files: Sequence[Path]) -> dg.Definitions:
    """The location's Definitions with the workflow ``files`` added as the user's own code
    (each replaces a loaded workflow of its name that is not shipped); ConfigError with the
    reason when one is refused."""
    from omics_assets.components.loader import load_workflows
    from omics_assets.components.workflow import refused_workflows
    from omics_assets.location import LOCATION

    own = tuple(files)
    defs = replace(LOCATION, data_defs=lambda: load_workflows(own)).definitions()
    refused = refused_workflows(defs)
    for file in own:
        if str(file) in refused:
            raise ConfigError(refused[str(file)])
    return defs


def _config_file(config: Mapping[str, Any] | Path | str) -> Path:
    """A config given as a mapping is written once under the data root (the file its
    errors and its run's record name)."""
    if not isinstance(config, Mapping):
        return Path(config)
    from omics_assets.location import LOCATION
    from platform_core.checkpoint import fingerprint
    from platform_core.io import atomic_write_bytes

    data = json.loads(json.dumps(dict(config)))
    if data.get("domain") in DOMAINS:  # relative paths: to the working directory
        data = absolute_paths(data["domain"], Layer("execute_workflow", data))
    text = yaml.safe_dump(data, sort_keys=False)
    name = str(config.get("name") or "config")
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in name)[:64]
    folder = LOCATION.store().area("api-configs", fingerprint(text)[:16])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe}.yaml"  # its run key: <name>-<hash of the resolved config>
    if not path.exists():
        atomic_write_bytes(path, text.encode())
    return path


def execute_workflow(
    config: Mapping[str, Any] | Path | str,
    params: Sequence[str] = (),
    run: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the workflow ``config`` names (a YAML file or the same mapping) with ``params``
    (``a.b.c=value``) applied last; ``run``: the run key (default: from the config's hash).
    The step result records by step. ConfigError when the config does not validate."""
    from omics_assets.cli import OmicsCli
    from omics_assets.results import run_results
    from platform_core.cli import CliError
    from platform_core.confine import user_process

    runner = OmicsCli()
    argv = ["run", "--config", str(_config_file(config)), "--here", "--quiet"]
    argv += [f"--param={p}" for p in params] + (["--run", run] if run else [])
    args = runner.parser("omics", "").parse_args(argv)
    try:
        with user_process():  # the CLI's run verb, without its printing
            keys = runner.keys(args)
            runner.execute(runner.request(args, keys), args)
    except CliError as error:
        raise ConfigError(str(error)) from None
    [only] = runner.runs
    return run_results(runner.session.instance, only["run_id"], runner.workflows[args.workflow])


def execute_domain_workflow(
    domain: Domain,
    config: Mapping[str, Any],
    work_dir: str | Path,
    params: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Run ``config`` as a workflow of ``domain`` writing under ``work_dir``: a run config
    of the shipped workflow named after the domain unless ``config`` names its own."""
    named = {"name": domain, **dict(config), "domain": domain, "work_dir": str(work_dir)}
    return execute_workflow(named, params)


def workflow_status(workflow: str | Path) -> list[dict[str, Any]]:
    """Per run of a workflow (its name, or the file of a workflow of your own): its run key,
    last Dagster run, status and duration."""
    from omics_assets.cli import OmicsCli
    from platform_core.cli import CliError
    from platform_core.confine import user_process

    runner = OmicsCli()
    try:
        with user_process():
            name = runner.adopt(Path(workflow)) if isinstance(workflow, Path) else workflow
            definition = runner.definition(argparse.Namespace(workflow=name, config=None))
    except CliError as error:
        raise ConfigError(str(error)) from None
    return runner.status_of([definition.name])
