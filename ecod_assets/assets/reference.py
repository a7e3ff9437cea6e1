"""The reference library: an ECOD release made searchable (BLAST databases, family profiles)."""

from pathlib import Path

import dagster as dg
import pandas as pd

from ecod_assets.demo import write_demo_library
from ecod_assets.resources import TOOL_POOL, EcodTools, OrchestrationConfig
from ecod_assets.science.fasta import FastaError
from ecod_assets.science.library import LibraryPaths, build_once
from ecod_assets.science.reference import ReferenceError, read_release
from platform_core.checkpoint import fingerprint
from platform_core.io import data_root
from platform_core.tools import ToolError

LIBRARY_CODE_VERSION = "2"  # 2: family profiles from a multiple alignment (mafft)


class ReferenceConfig(dg.Config):
    """An ECOD release: ``domains_path`` (ecod.latest.domains.txt format) and ``fasta_path``
    (domain sequences). Both empty: the bundled demo library."""

    domains_path: str = ""
    fasta_path: str = ""


def library_dir() -> Path:
    return data_root() / "ecod" / "reference"


@dg.asset(
    group_name="ecod_reference",
    pool=TOOL_POOL,
    code_version=LIBRARY_CODE_VERSION,
    description="An ECOD release (domains file + domain FASTA) with its BLAST chain and domain "
    "databases and the HH-suite database of family profiles. Each release is built once into "
    "its own content-addressed folder, so a new library never disturbs batches of the old one.",
)
def reference_library(
    context: dg.AssetExecutionContext,
    config: ReferenceConfig,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dg.Output[dict]:
    if bool(config.domains_path) != bool(config.fasta_path):
        raise dg.Failure("give both domains_path and fasta_path, or neither (demo library)")
    if config.domains_path:
        domains_path, fasta_path, source = (
            Path(config.domains_path),
            Path(config.fasta_path),
            "user",
        )
    else:
        demo = write_demo_library(library_dir() / "demo-source")
        domains_path, fasta_path, source = demo.domains_path, demo.fasta_path, "demo"
    for path in (domains_path, fasta_path):
        if not path.is_file():
            raise dg.Failure(f"reference file {path} does not exist")
    try:
        domains = read_release(domains_path, fasta_path)
    except (FastaError, ReferenceError) as error:
        raise dg.Failure(f"invalid reference library: {error}", allow_retries=False) from None
    key = fingerprint(LIBRARY_CODE_VERSION, domains)
    root = library_dir() / key
    try:
        cpu = build_once(domains, root, ecod_tools.programs(), orchestration.limits())
    except ToolError as error:
        raise dg.Failure(f"building the reference library failed: {error}") from None
    families = domains["f_id"].nunique()
    value = {
        "root": str(root),
        "fingerprint": key,
        "source": source,
        "domains_path": str(domains_path),
        "fasta_path": str(fasta_path),
        "domains": len(domains),
        "families": int(families),
        "chains": int(domains["chain_id"].nunique()),
    }
    return dg.Output(
        value,
        data_version=dg.DataVersion(key),
        metadata={
            "source": source,
            "domains": len(domains),
            "families (F-groups)": int(families),
            "X-groups": int(domains["f_id"].str.split(".").str[0].nunique()),
            "library": dg.MetadataValue.path(str(root)),
            "tool_cpu_seconds": round(cpu, 2),
            "built": cpu > 0,
        },
    )


def library_paths(library: dict) -> LibraryPaths:
    """Paths of the materialized library; a clear error if its folder is gone."""
    paths = LibraryPaths(Path(library["root"]))
    if not (paths.root / "complete").exists():
        raise dg.Failure(
            f"reference library folder {paths.root} is missing or incomplete; "
            "re-materialize reference_library (ecod reference)"
        )
    return paths


def library_domains(library: dict) -> pd.DataFrame:
    """The reference domains (with sequences and X/H/T/F) of the materialized library."""
    return pd.read_parquet(library_paths(library).domains_table)
