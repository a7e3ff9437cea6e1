"""The three domains: their steps in order, what each step reads, and the typed shape of
their configuration (every model refuses unknown keys; default values live in
``omics_assets/defaults/<domain>.yaml``, not here)."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from omics_assets.science import gwas, read_simulation, rnaseq, simulation
from omics_assets.science.steps import StepFunction

Domain = Literal["rnaseq", "gwas", "simulation"]


# A file path in a config: relative paths are relative to the file that sets them (or, set by
# an environment variable or --param, to the working directory).
FilePath = Annotated[str | None, "path"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoConfig(Strict):
    """A step without parameters."""


class RnaseqInputs(Strict):
    transcripts: FilePath
    annotation: FilePath
    samplesheet: FilePath
    counts: FilePath
    reference_level: str
    quantifier: Literal["kallisto", "salmon"]


class SimulateReadsConfig(Strict):
    read_length: int = Field(ge=25, le=250)
    fragment_mean: int = Field(ge=50)
    fragment_sd: int = Field(ge=1)
    pairs_per_sample: int = Field(ge=100)
    de_transcripts: int = Field(ge=0)
    log2_fold_change: float
    dispersion: float = Field(gt=0)
    seed: int


class IndexConfig(Strict):
    kmer: int = Field(ge=15, le=31)


class QuantifyConfig(Strict):
    fragment_mean: float = Field(gt=0, description="single-end reads only, bp")
    fragment_sd: float = Field(gt=0)
    min_mapping_rate: float = Field(ge=0, le=100, description="percent; below it: a warning")


class DifferentialExpressionConfig(Strict):
    alpha: float = Field(gt=0, lt=1)
    min_count: int = Field(ge=0)
    treatment: str | None


class ReportConfig(Strict):
    alpha: float = Field(gt=0, lt=1)


class GwasInputs(Strict):
    genotypes: FilePath
    phenotype: FilePath
    trait: str | None


class QcConfig(Strict):
    maf: float = Field(ge=0, lt=0.5)
    geno: float = Field(ge=0, le=1)
    hwe: float = Field(ge=0, le=1)
    mind: float = Field(ge=0, le=1)


class PcaConfig(Strict):
    components: int = Field(ge=1, le=50)


class AssociationConfig(Strict):
    pcs_as_covariates: bool
    lmm: bool


class HitsConfig(Strict):
    p_threshold: float = Field(gt=0, lt=1)
    window_kb: int = Field(ge=0)


class StdpopsimModel(Strict):
    species: str
    model: str
    population: str
    contig: str
    left: float = Field(ge=0, description="bp: the simulated stretch of the contig starts here")
    right: float = Field(gt=0, description="bp: and ends here")


class TreeSequenceConfig(Strict):
    samples: int = Field(ge=2)
    sequence_length: float = Field(gt=0)
    recombination_rate: float = Field(ge=0)
    mutation_rate: float = Field(gt=0)
    population_size: float = Field(gt=0)
    seed: int = Field(ge=1)
    stdpopsim: StdpopsimModel | None


class PhenotypeConfig(Strict):
    causal_snps: int = Field(ge=1)
    variance_explained: float = Field(gt=0, lt=1)
    min_maf: float = Field(ge=0, lt=0.5)
    seed: int


def path_keys(domain: Domain) -> list[str]:
    """The ``domain_specific`` keys that hold file paths."""
    fields = INPUTS[domain].model_fields
    return [name for name, info in fields.items() if "path" in info.metadata]


@dataclass(frozen=True)
class Step:
    """One step: its function, the steps it reads (``needs``), its parameters' model.
    A ``required`` step cannot be disabled (every other step reads it)."""

    name: str
    run: StepFunction
    needs: tuple[str, ...]
    config: type[Strict]
    tools: tuple[str, ...] = ()
    required: bool = False
    checks: tuple[tuple[str, str], ...] = ()  # (name, what it checks): WARN when it fails

    @property
    def description(self) -> str:
        return (inspect.getdoc(self.run) or self.name).split("\n\n")[0].replace("\n", " ")

    @property
    def code_version(self) -> str:
        """Hash of the source of the step's module: a change of code is a new version."""
        source = inspect.getsource(inspect.getmodule(self.run))  # type: ignore[arg-type]
        return hashlib.sha256(source.encode()).hexdigest()[:12]


STEPS: dict[Domain, tuple[Step, ...]] = {
    "rnaseq": (
        Step("reference", rnaseq.reference, (), NoConfig),
        Step("samplesheet", rnaseq.samplesheet, (), NoConfig, required=True),
        Step(
            "simulate_reads",
            read_simulation.simulate_reads,
            ("reference", "samplesheet"),
            SimulateReadsConfig,
            ("art_illumina",),
        ),
        Step("index", rnaseq.build_index, ("reference",), IndexConfig, ("kallisto", "salmon")),
        Step(
            "quantify",
            rnaseq.quantify,
            ("index", "samplesheet", "simulate_reads"),
            QuantifyConfig,
            ("kallisto", "salmon"),
            checks=(("mapping_rate", "every sample maps at least min_mapping_rate %"),),
        ),
        Step("gene_counts", rnaseq.gene_counts, ("quantify", "reference"), NoConfig),
        Step(
            "differential_expression",
            rnaseq.differential_expression,
            ("gene_counts", "samplesheet"),
            DifferentialExpressionConfig,
        ),
        Step("report", rnaseq.report, ("quantify", "differential_expression"), ReportConfig),
    ),
    "gwas": (
        Step("genotypes", gwas.stage_genotypes, (), NoConfig, ("plink2",), required=True),
        Step("qc", gwas.quality_control, ("genotypes",), QcConfig, ("plink2",)),
        Step("pca", gwas.principal_components, ("qc",), PcaConfig, ("plink2",)),
        Step(
            "association",
            gwas.association,
            ("genotypes", "qc", "pca"),
            AssociationConfig,
            ("plink2", "gemma"),
            checks=(("genomic_inflation", "lambda GC of the reported test is at most 1.1"),),
        ),
        Step("hits", gwas.hits, ("association",), HitsConfig),
        Step("report", gwas.report, ("association", "hits"), NoConfig),
    ),
    "simulation": (
        Step(
            "tree_sequence",
            simulation.tree_sequence,
            (),
            TreeSequenceConfig,
            ("msprime",),
            required=True,
        ),
        Step("vcf", simulation.vcf, ("tree_sequence",), NoConfig),
        Step("phenotype", simulation.phenotype, ("tree_sequence",), PhenotypeConfig),
    ),
}
INPUTS: dict[Domain, type[Strict]] = {
    "rnaseq": RnaseqInputs,
    "gwas": GwasInputs,
    "simulation": NoConfig,
}
# What a gwas workflow reads from the simulation workflow named by its ``input:``.
UPSTREAM_STEPS: dict[Domain, tuple[str, ...]] = {"simulation": ("vcf", "phenotype")}


def step(domain: Domain, name: str) -> Step:
    return next(s for s in STEPS[domain] if s.name == name)


def config_model(domain: Domain) -> type[Strict]:
    """The model of a domain's resolved config (the seed's config shape, every key typed)."""
    steps = {
        s.name: (
            create_model(
                f"{s.name}_toggle", __base__=Strict, enabled=(bool, ...), config=(s.config, ...)
            ),
            ...,
        )
        for s in STEPS[domain]
    }
    steps_model = create_model(f"{domain}_steps", __base__=Strict, **steps)  # type: ignore
    return create_model(
        f"{domain}_config",
        __base__=Strict,
        name=(str, ...),
        domain=(Literal[domain], ...),  # type: ignore[valid-type]
        work_dir=(str, ...),
        threads=(int, Field(ge=1, le=256)),
        input=(str | None, None),
        domain_specific=(INPUTS[domain], ...),
        steps=(steps_model, ...),
    )


def wiring(domain: Domain, enabled: Mapping[str, bool]) -> dict[str, tuple[str, ...]]:
    """For each enabled step, the enabled steps it reads: a disabled need is replaced by what
    that step itself reads (deps rewired past disabled steps)."""

    def resolve(name: str) -> tuple[str, ...]:
        if enabled[name]:
            return (name,)
        return tuple(dict.fromkeys(n for need in step(domain, name).needs for n in resolve(need)))

    return {
        s.name: tuple(dict.fromkeys(n for need in s.needs for n in resolve(need)))
        for s in STEPS[domain]
        if enabled[s.name]
    }
