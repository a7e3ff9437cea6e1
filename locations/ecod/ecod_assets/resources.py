"""Resources of the ECOD location: the release, tool settings, the seed's OrchestrationConfig."""

import os
import re
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal

import dagster as dg
from pydantic import BaseModel, Field, field_validator

from ecod_assets.science.blast import CONFIDENT_EVALUE, CONFIDENT_IDENTITY, RELEASE_DB_RESIDUES
from ecod_assets.science.hhsuite import MAX_HITS, RELEASE_DB_PROFILES
from ecod_assets.science.partition import PartitionRules
from ecod_assets.science.tools import Limits, Programs
from platform_core.datastore import ConfinedPaths
from platform_core.tools import ToolError, run_tool

# BLAST and HH-suite steps claim a slot of this pool; its limit is 1 (``pools: default_limit``
# in dagster.yaml), and each step runs ``workers`` tool processes, so the cores are never
# oversubscribed.
TOOL_POOL = "ecod_tools"
Mode = Literal["full", "blast-only", "analysis-only"]
MODES: tuple[Mode, ...] = ("full", "blast-only", "analysis-only")
QUERY_PROFILE_SOURCES = ("blast", "hhblits")
TOTAL_TIMEOUT_ENV = "ECOD_TOTAL_TIMEOUT"
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([GMgm])?\s*$")


class ReferenceRelease(ConfinedPaths, dg.ConfigurableResource):
    """The ECOD release this location classifies against: a setting of the location, the same
    for every run, however started. ``domains_path`` (ecod.latest.domains.txt format) and
    ``fasta_path`` (domain sequences): ``ECOD_RELEASE_DOMAINS`` and ``ECOD_RELEASE_FASTA``.
    Unset, the release ``ecod reference --domains F --fasta F`` recorded is used, else the
    bundled demo release. Set in a run's config from the UI, both must lie inside the input
    roots (platform_core.datastore.ConfinedPaths)."""

    domains_path: str = ""
    fasta_path: str = ""
    confined_fields: ClassVar[tuple[str, ...]] = ("domains_path", "fasta_path")


class OrchestrationConfig(dg.ConfigurableResource):
    """The seed's OrchestrationConfig, as a resource every stage reads.

    - ``checkpoint_enabled``: reuse a stage's stored result when its code, parameters and
      inputs are unchanged (no tool runs); ``ecod run --force-restart`` turns it off.
    - ``continue_on_error``: failed chains are recorded with their error and the stage goes
      on; it fails only when more than ``max_failed_fraction`` of the chains failed.
    - ``blast_batch_size``: chains per blastp call.
    - ``workers``: tool processes (BLAST) or threads (hhsearch_omp) at once (default: the
      machine's cores); the seed's ``hhsearch_threads``.
    - ``hhsearch_memory``: HH-suite memory cap, e.g. ``16G`` (``-maxmem``).
    - ``hhsearch_coverage_threshold``: HHsearch runs only for chains whose *confident* BLAST
      coverage is below this (ECOD production: 0.9). A hit is confident at E-value <=
      ``blast_confident_evalue`` and identity >= ``blast_confident_identity``; a chain "covered"
      by weak hits still gets profile evidence, and the partition prefers that evidence.
    - ``blast_dbsize`` (residues) and ``hhsearch_db_profiles``: the database size E-values are
      stated for, a real ECOD release by default, so a small library does not make weak hits
      look significant; ``hhsearch_max_hits``: HHsearch ``-Z``/``-B`` (ECOD: 5000).
    - ``query_profile``: ``blast`` (profile from the domain-BLAST alignments) or ``hhblits``.
    - ``stage_timeout`` (seconds) caps every tool call; ``tool_retries`` retries a crashed or
      timed-out call. The seed's ``total_timeout`` is ``RunLimits.total_timeout_seconds``.
    """

    checkpoint_enabled: bool = True
    continue_on_error: bool = True
    max_failed_fraction: float = 0.1
    blast_batch_size: int = 100
    workers: int = 0
    hhsearch_memory: str = "16G"
    hhsearch_coverage_threshold: float = 0.9
    blast_confident_evalue: float = CONFIDENT_EVALUE
    blast_confident_identity: float = CONFIDENT_IDENTITY
    blast_dbsize: int = RELEASE_DB_RESIDUES
    hhsearch_db_profiles: int = RELEASE_DB_PROFILES
    hhsearch_max_hits: int = MAX_HITS
    query_profile: str = "blast"
    stage_timeout: int = 3600
    tool_retries: int = 2
    retry_backoff_seconds: float = 1.0

    @field_validator("query_profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in QUERY_PROFILE_SOURCES:
            raise ValueError(f"query_profile must be one of {QUERY_PROFILE_SOURCES}, not {value!r}")
        return value

    @field_validator("hhsearch_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not _MEMORY.match(value):
            raise ValueError(f"hhsearch_memory {value!r}: expected e.g. 16G or 512M")
        return value

    def memory_gb(self) -> float:
        number, unit = _MEMORY.match(self.hhsearch_memory).groups()  # type: ignore[union-attr]
        return float(number) / (1024 if (unit or "G").upper() == "M" else 1)

    def partition_rules(self) -> PartitionRules:
        """The partition's rules with this location's confident-BLAST thresholds."""
        return PartitionRules(
            confident_evalue=self.blast_confident_evalue,
            confident_identity=self.blast_confident_identity,
        )

    def limits(self, workdir: Path | None = None) -> Limits:
        """How tools run; ``workdir``: where their query and result files go (the storage
        owner's scratch space)."""
        return Limits(
            workers=self.workers or os.cpu_count() or 1,
            timeout=float(self.stage_timeout),
            retries=self.tool_retries,
            backoff_seconds=self.retry_backoff_seconds,
            workdir=workdir,
        )


class RunLimits(BaseModel):
    """The location's options that shape its jobs, read when its Definitions are built
    (``locations.ecod`` of the platform config; the variable over the file).

    - ``total_timeout_seconds`` (``ECOD_TOTAL_TIMEOUT``): the seed's total timeout, the
      ``dagster/max_runtime`` tag of every ECOD job; the instance's run monitoring stops a run
      past it. 0 or none: no ceiling.
    """

    total_timeout_seconds: int | None = Field(86400, ge=0)

    @field_validator("total_timeout_seconds", mode="before")
    @classmethod
    def _none(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("none", "") else value


class EcodTools(ConfinedPaths, dg.ConfigurableResource):
    """Paths of BLAST+, HH-suite and HMMER programs; empty means found on PATH (``hhsearch``: the
    OpenMP build ``hhsearch_omp``, which takes an ffindex of queries; cstranslate: the Debian
    per-CPU build under /usr/libexec/hhsuite). The operator's: a UI run may not set them."""

    blastp: str = ""
    makeblastdb: str = ""
    hhsearch: str = ""
    hhblits: str = ""
    hmmscan: str = ""
    operator_fields: ClassVar[tuple[str, ...]] = (
        "blastp",
        "makeblastdb",
        "hhsearch",
        "hhblits",
        "hmmscan",
    )

    def programs(self) -> Programs:
        found = Programs.discover()
        overrides = {k: v for k, v in self.model_dump().items() if v}
        return Programs(**{**found.__dict__, **overrides})


@cache
def tool_version(program: str) -> str:
    """First line with a version a program prints about itself (``-version`` for BLAST+,
    ``-h`` for HH-suite and HMMER),
    for provenance metadata; "unknown" if it cannot say."""
    flag = "-version" if Path(program).name.startswith(("blast", "makeblastdb")) else "-h"
    try:
        lines = run_tool([program, flag], 30, retries=0).stdout.splitlines()
    except ToolError:
        return "unknown"
    versioned = [line.strip("# ") for line in lines if any(c.isdigit() for c in line)]
    if not versioned:
        return "unknown"
    words = versioned[0].split(maxsplit=1)  # "blastp: 2.12.0+", "# HMMER 3.3.2 (...); url"
    text = words[1] if words[0].endswith(":") and len(words) > 1 else versioned[0]
    return text.split(";")[0].strip()
