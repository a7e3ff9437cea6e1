"""The reference library: the location's ECOD release made searchable (BLAST databases,
family profiles).

The release is a setting of the location (``ReferenceRelease``), not of a run, so every run,
whether a sensor, the UI or a CLI started it, classifies against the same one. Its library is
built once per release content, by the first run that needs it: ``reference_library`` itself,
or the first batch step of a batch run (which then records the build as a materialization of
``reference_library``). A lock in the data root makes a second run wait for that build instead
of racing it; the built folder is content-addressed, so a new release never disturbs batches
of the old one.
"""

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import pandas as pd

from ecod_assets.demo import write_demo_library
from ecod_assets.resources import TOOL_POOL, EcodTools, OrchestrationConfig, ReferenceRelease
from ecod_assets.science.fasta import FastaError
from ecod_assets.science.library import LibraryPaths, build_once
from ecod_assets.science.reference import ReferenceError, read_release
from platform_core.checkpoint import fingerprint
from platform_core.datastore import DataStore
from platform_core.inbox import signature
from platform_core.io import write_json
from platform_core.tools import ToolError

LIBRARY_CODE_VERSION = "3"  # 2: family profiles from a multiple alignment (mafft); 3: HMMs
REFERENCE = dg.AssetKey("reference_library")
RECORDED_RELEASE = "release.json"  # what `ecod reference --domains F --fasta F` recorded


@dataclass(frozen=True)
class ReleaseFiles:
    """The release files in use and where that choice came from."""

    domains: Path
    fasta: Path
    source: Literal["configured", "recorded", "demo"]


def record_release(store: DataStore, files: tuple[Path, Path] | None) -> None:
    """Make ``files`` (domains, FASTA), or the demo release when None, the location's release
    for every later run (unless ``ECOD_RELEASE_DOMAINS`` / ``ECOD_RELEASE_FASTA`` set one)."""
    recorded = store.area("reference") / RECORDED_RELEASE
    if files is None:
        recorded.unlink(missing_ok=True)
        return
    domains, fasta = (str(path.resolve()) for path in files)
    write_json(recorded, {"domains_path": domains, "fasta_path": fasta})


def release_files(release: ReferenceRelease, store: DataStore) -> ReleaseFiles:
    """The configured release (environment), else the recorded one, else the demo release
    (written once, under the build lock, into the data root)."""
    if bool(release.domains_path) != bool(release.fasta_path):
        raise dg.Failure(
            "set both ECOD_RELEASE_DOMAINS and ECOD_RELEASE_FASTA, or neither (demo release)",
            allow_retries=False,
        )
    if release.domains_path:
        return ReleaseFiles(Path(release.domains_path), Path(release.fasta_path), "configured")
    recorded = store.area("reference") / RECORDED_RELEASE
    if recorded.exists():
        paths = json.loads(recorded.read_text())
        return ReleaseFiles(Path(paths["domains_path"]), Path(paths["fasta_path"]), "recorded")
    demo = store.area("reference", "demo-source")
    domains, fasta = demo / "demo.domains.txt", demo / "demo.fasta"
    if not (demo / "complete").exists():
        with build_lock(store):
            if not (demo / "complete").exists():
                write_demo_library(demo)
                (demo / "complete").touch()
    return ReleaseFiles(domains, fasta, "demo")


@contextmanager
def build_lock(store: DataStore) -> Iterator[None]:
    """One library build at a time in this data root: a second run waits, then finds it."""
    lock = store.area("reference") / ".build.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def release_library(
    release: ReferenceRelease,
    store: DataStore,
    tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> tuple[dict[str, Any], float]:
    """(The library of the location's release, tool CPU seconds spent building it: 0.0 when
    it was built before). A release already built is found by its files' names, sizes and
    modification times without reading them."""
    files = release_files(release, store)
    for path in (files.domains, files.fasta):
        if not path.is_file():
            raise dg.Failure(f"reference file {path} does not exist", allow_retries=False)
    seen = fingerprint(
        LIBRARY_CODE_VERSION,
        [str(p.resolve()) for p in (files.domains, files.fasta)],
        [signature(p)[0] for p in (files.domains, files.fasta)],
    )
    index = store.area("reference", "releases") / f"{seen}.json"
    with build_lock(store):
        if index.exists():
            value = json.loads(index.read_text())
            if (Path(value["root"]) / "complete").exists():
                return value, 0.0
        try:
            domains = read_release(files.domains, files.fasta)
        except (FastaError, ReferenceError) as error:
            raise dg.Failure(f"invalid reference library: {error}", allow_retries=False) from None
        key = fingerprint(LIBRARY_CODE_VERSION, domains)
        root = store.area("reference", key)
        try:
            with store.scratch("ecod-library") as work:
                cpu = build_once(domains, root, tools.programs(), orchestration.limits(work))
        except ToolError as error:
            raise dg.Failure(f"building the reference library failed: {error}") from None
        value = {
            "root": str(root),
            "fingerprint": key,
            "source": files.source,
            "domains_path": str(files.domains),
            "fasta_path": str(files.fasta),
            "domains": len(domains),
            "families": int(domains["f_id"].nunique()),
            "x_groups": int(domains["f_id"].str.split(".").str[0].nunique()),
            "chains": int(domains["chain_id"].nunique()),
        }
        write_json(index, value)
    return value, cpu


def library_metadata(library: dict[str, Any], cpu: float) -> dict[str, Any]:
    return {
        "source": library["source"],
        "domains": library["domains"],
        "families (F-groups)": library["families"],
        "X-groups": library["x_groups"],
        "library": dg.MetadataValue.path(library["root"]),
        "tool_cpu_seconds": round(cpu, 2),
        "built": cpu > 0,
    }


@dg.asset(
    group_name="ecod_reference",
    pool=TOOL_POOL,
    code_version=LIBRARY_CODE_VERSION,
    description="The location's ECOD release (ECOD_RELEASE_DOMAINS + ECOD_RELEASE_FASTA, or the "
    "one `ecod reference --domains --fasta` recorded, else the demo release) with its BLAST "
    "chain and domain databases and the HH-suite database of family profiles. Built once per "
    "release content, by this asset or by the first batch run that needs it, into its own "
    "content-addressed folder, so a new library never disturbs batches of the old one.",
)
def reference_library(
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dg.Output[dict]:
    library, cpu = release_library(release, storage, ecod_tools, orchestration)
    return dg.Output(
        library,
        data_version=dg.DataVersion(library["fingerprint"]),
        metadata=library_metadata(library, cpu),
    )


def batch_library(
    context: dg.AssetExecutionContext,
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dict[str, Any]:
    """The library a batch step searches: the location's release, built here when no run
    built it before, and then recorded as a materialization of reference_library."""
    library, cpu = release_library(release, storage, ecod_tools, orchestration)
    if cpu > 0:
        context.log.info(f"built the reference library of the {library['source']} release")
        context.log_event(
            dg.AssetMaterialization(
                REFERENCE,
                metadata={**library_metadata(library, cpu), "built_by_batch_run": True},
                tags={"dagster/data_version": library["fingerprint"]},
            )
        )
    return library


def library_paths(library: dict) -> LibraryPaths:
    """Paths of a built library; a clear error if its folder is gone."""
    paths = LibraryPaths(Path(library["root"]))
    if not (paths.root / "complete").exists():
        raise dg.Failure(
            f"reference library folder {paths.root} is missing or incomplete; "
            "re-materialize reference_library (ecod reference)"
        )
    return paths


def library_domains(library: dict) -> pd.DataFrame:
    """The reference domains (with sequences and X/H/T/F) of a built library."""
    return pd.read_parquet(library_paths(library).domains_table)
