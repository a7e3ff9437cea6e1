"""The omics location's inputs: a run is a partition of its workflow, keyed by name, and its
config, resolved once through the layers (omics_assets.workflows.resolve_run), is recorded in
the input registry (platform_core.inputs) and never changed: from ``omics submit`` / ``omics
run``, the config inbox, or, for a partition added in the UI, the workflow's own config."""

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omics_assets import config as cfg
from omics_assets.science.domains import input_paths
from omics_assets.science.reads import SHEET_FILE_COLUMNS, samplesheet_table, sheet_file
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
        paths = input_paths(domain, inputs)  # type: ignore[arg-type]
        keys += [".".join(("domain_specific", *k)) for k, v in paths.items() if v is not None]
    return keys


def check_untrusted_paths(
    store: DataStore, config: Mapping[str, Any], gzip_limit_mb: float | None = None
) -> dict[str, Any]:
    """``config`` with each path its record lists as set by a dropped file replaced by where
    it resolves, which must be: for ``work_dir``, inside the data root; for inputs (and the
    FASTQ paths of a dropped samplesheet), inside the data root or ``PLATFORM_INPUT_ROOTS``;
    never in an inbox (the dropper could swap a folder there for a link after the check).
    ConfinementError if not. With ``gzip_limit_mb``, a gzip input may not expand past it
    (InputTooLargeError; each version of a file is streamed once). Called at registration
    (which records the resolved paths) and again by every step."""
    roots, checked = input_roots(store.base()), copy.deepcopy(dict(config))
    for key in config.get(UNTRUSTED, []):
        if key == "work_dir":
            work = confine(store.resolve(config["work_dir"]), [store.base()], "work_dir")
            checked["work_dir"] = str(_outside_inboxes(store, work, "work_dir"))
            continue
        *parents, name = key.split(".")
        node = functools.reduce(lambda n, k: n.get(k) or {}, parents, checked)
        value, what = node.get(name), key
        if not value:
            continue
        path = _outside_inboxes(store, confine(value, roots, what), what)
        node[name] = str(path)
        files = input_files(path)
        if name == "samplesheet" and files:
            check_gzip_size(files[0], MAX_SAMPLESHEET_MB * 1e6, what)
            files += _sheet_reads(files[0], roots)
        for file in files:
            _outside_inboxes(store, confine(file, roots, f"{what} ({file.name})"), what)
            if gzip_limit_mb is not None:
                _check_gzip_once(store, file, gzip_limit_mb, what)
    return checked


MAX_SAMPLESHEET_MB = 100.0  # a samplesheet lists files: past this it is not one


def _outside_inboxes(store: DataStore, path: Path, what: str) -> Path:
    """``path`` (resolved) unless it lies in an inbox of the data root."""
    base = store.base()
    if path.is_relative_to(base) and path.relative_to(base).parts[1:2] == (INBOX,):
        raise ConfinementError(
            f"{what} {path}: inside an inbox, which anyone who drops files can change; "
            "name files outside the inboxes"
        )
    return path


def _check_gzip_once(store: DataStore, file: Path, limit_mb: float, what: str) -> None:
    """``check_gzip_size`` once per version of a file (path, inode, size, mtime, ctime: a
    file changed in any way, even with its mtime put back, is checked again) and limit."""
    stat = file.stat()
    version = [str(file.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    marker = store.area("checked-inputs") / f"{fingerprint([*version, limit_mb])[:32]}.json"
    if not marker.exists():
        size = check_gzip_size(file, limit_mb * 1e6, what)
        write_json(marker, {"file": str(file), "decompressed_bytes": size})


def _sheet_reads(sheet: Path, roots: tuple[Path, ...]) -> list[Path]:
    """The read files a samplesheet names, each confined (relative: to the sheet), read as
    the samplesheet step reads them."""
    try:
        table = samplesheet_table(sheet)
    except InputError:
        return []  # the samplesheet step reports what is wrong with it
    reads = []
    for row in table.to_dict("records"):
        for column in SHEET_FILE_COLUMNS:
            value = row.get(column)
            if isinstance(value, str) and value:
                what = f"samplesheet {sheet} line {row['line']}: {column}"
                reads.append(confine(sheet_file(sheet, value), roots, what))
    return [r for r in reads if r.exists()]
