"""The omics location's inputs: a run is a partition of its workflow, keyed by name, and its
config, resolved once through the layers (omics_assets.workflows.resolve_run), is recorded in
the input registry (platform_core.inputs) and never changed: from ``omics submit`` / ``omics
run``, the config inbox, or, for a partition added in the UI, the workflow's own config."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omics_assets import config as cfg
from omics_assets.science.domains import path_keys
from omics_assets.science.reads import READ_COLUMNS, samplesheet_table
from omics_assets.science.steps import InputError
from omics_assets.workflows import WorkflowDefinition, input_files, resolve_run
from platform_core.checkpoint import fingerprint
from platform_core.confine import ConfinementError, check_gzip_size, confine, input_roots
from platform_core.datastore import INBOX, DataStore
from platform_core.inputs import InputRegistry, RegisteredElsewhereError
from platform_core.io import write_json


def _runs(definition: WorkflowDefinition) -> InputRegistry:
    """The runs of a workflow's partitions (one record per run key and workflow)."""
    command = f"omics submit --workflow {definition.name}"
    return InputRegistry(("runs", definition.partitions_name), "run", command)


def register_run(
    store: DataStore, definition: WorkflowDefinition, key: str, config: Mapping[str, Any]
) -> str:
    """Record the run's resolved config under its key; the same config again is a no-op, a
    different one under a used key is refused."""

    def taken(_: dict) -> str:
        return (
            f"run {key!r} of workflow {definition.name} exists with another config; pass a "
            "new --run name"
        )

    try:
        _runs(definition).register(store, f"{key}.{definition.name}", dict(config), taken)
    except RegisteredElsewhereError as error:
        raise cfg.ConfigError(str(error)) from None
    return key


def is_registered(store: DataStore, definition: WorkflowDefinition, key: str) -> bool:
    return _runs(definition).entry(store, f"{key}.{definition.name}").exists()


def registered_config(store: DataStore, definition: WorkflowDefinition, key: str) -> dict[str, Any]:
    """The config a run was registered with; a run added in the UI (never registered) gets
    the workflow's own config (defaults, definition, environment), registered now."""
    if is_registered(store, definition, key):
        return _runs(definition).record(store, f"{key}.{definition.name}")
    config = resolve_run({definition.name: definition}, definition.name).config
    register_run(store, definition, key, config)
    return config


UNTRUSTED = "untrusted_paths"  # in a run's record: the path keys a dropped config set


def dropped_path_keys(domain: str, dropped: cfg.Layer) -> list[str]:
    """The keys holding paths that a dropped config's own layer sets (``work_dir``,
    ``domain_specific.<input>``): only these are confined; shipped defaults, the workflow's
    definition and the environment are the operator's."""
    keys = ["work_dir"] if dropped.data.get("work_dir") is not None else []
    inputs = dropped.data.get("domain_specific")
    if isinstance(inputs, Mapping):
        keys += [f"domain_specific.{k}" for k in path_keys(domain) if inputs.get(k) is not None]
    return keys


def check_untrusted_paths(
    store: DataStore, config: Mapping[str, Any], gzip_limit_mb: float | None = None
) -> None:
    """ConfinementError unless every path the run's record lists as set by a dropped file
    resolves inside its roots: ``work_dir`` inside the data root but not in an inbox (which
    the dropper can write to); inputs (and the FASTQ paths of a dropped samplesheet) inside
    the data root or ``PLATFORM_INPUT_ROOTS``. With ``gzip_limit_mb``, a gzip input may not
    expand past it (InputTooLargeError; each file version is streamed once). Called at
    registration and again by every step, since files may be swapped in between."""
    roots = input_roots(store.base())
    for key in config.get(UNTRUSTED, []):
        if key == "work_dir":
            work = confine(store.resolve(config["work_dir"]), [store.base()], "work_dir")
            if work.relative_to(store.base().resolve()).parts[1:2] == (INBOX,):
                raise ConfinementError(f"work_dir {config['work_dir']!r}: inside an inbox")
            continue
        name = key.removeprefix("domain_specific.")
        value = config["domain_specific"].get(name)
        if not value:
            continue
        files = input_files(confine(value, roots, f"domain_specific.{name}"))
        if name == "samplesheet" and files:
            files += _sheet_reads(files[0], roots)
        for file in files:
            confine(file, roots, f"domain_specific.{name} ({file.name})")
            if gzip_limit_mb is not None:
                _check_gzip_once(store, file, gzip_limit_mb, f"domain_specific.{name}")


def _check_gzip_once(store: DataStore, file: Path, limit_mb: float, what: str) -> None:
    """``check_gzip_size`` once per version of a file (path, size, mtime) and limit."""
    stat = file.stat()
    key = fingerprint([str(file.resolve()), stat.st_size, stat.st_mtime_ns, limit_mb])
    marker = store.area("checked-inputs") / f"{key[:32]}.json"
    if not marker.exists():
        write_json(
            marker, {"file": str(file), "bytes": check_gzip_size(file, limit_mb * 1e6, what)}
        )


def _sheet_reads(sheet: Path, roots: tuple[Path, ...]) -> list[Path]:
    """The read files a samplesheet names, each confined (relative: to the sheet), read as
    the samplesheet step reads them."""
    try:
        table = samplesheet_table(sheet)
    except InputError:
        return []  # the samplesheet step reports what is wrong with it
    reads = []
    for row in table.to_dict("records"):
        for column in READ_COLUMNS:
            value = row.get(column)
            if isinstance(value, str) and value:
                what = f"samplesheet {sheet} line {row['line']}: {column}"
                reads.append(confine(value, roots, what, base=sheet.parent))
    return [r for r in reads if r.exists()]
