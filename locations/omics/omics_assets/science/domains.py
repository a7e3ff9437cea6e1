"""The domains: their steps in order, what each step reads, and the typed shape of their
configuration (every model refuses unknown keys; default values live in
``omics_assets/defaults/<domain>.yaml``, not here). ``custom`` ships no steps: its workflows
are the user's own steps (``func: package.module:function``), which any domain may add."""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from omics_assets.science import (
    dna,
    ecology,
    epigenome,
    gwas,
    multiomics,
    read_simulation,
    rnaseq,
    simulation,
)
from omics_assets.science.specs import FilePath, NoConfig, Open, Step, Strict

Domain = Literal[
    "rnaseq", "gwas", "simulation", "dna", "epigenome", "ecology", "multiomics", "custom"
]
DOMAINS: tuple[Domain, ...] = (
    "rnaseq",
    "gwas",
    "simulation",
    "dna",
    "epigenome",
    "ecology",
    "multiomics",
    "custom",
)


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
    model: Literal["linear", "lmm", "loco"] = Field(
        description="linear: plink2 --glm; lmm: GEMMA with one kinship matrix; loco: GEMMA with "
        "a kinship matrix per left-out chromosome"
    )


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


def _holds_path_models(annotation: Any) -> bool:
    """Whether a field's type is (a mapping or union of) models with a ``FilePath`` field."""
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            if any("path" in f.metadata for f in arg.model_fields.values()):
                return True
        elif _holds_path_models(arg):
            return True
    return False


def input_paths(domain: Domain, inputs: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
    """Where a ``domain_specific`` mapping holds file paths, by key path: its ``FilePath``
    keys, and the ``path`` of each entry of a mapping of models that have one (multiomics
    ``views``), each with the value set there (None: not set)."""
    found: dict[tuple[str, ...], Any] = {}
    for key, info in INPUTS[domain].model_fields.items():
        value = inputs.get(key)
        if "path" in info.metadata:
            found[(key,)] = value
        elif isinstance(value, Mapping) and _holds_path_models(info.annotation):
            for name, entry in value.items():
                if isinstance(entry, Mapping) and "path" in entry:
                    found[(key, str(name), "path")] = entry["path"]
    return found


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
            export=("snp", "chrom", "pos", "beta", "p"),
        ),
        Step("hits", gwas.hits, ("association",), HitsConfig),
        Step("report", gwas.report, ("association", "hits"), NoConfig),
    ),
    "custom": (),
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
    "dna": dna.STEPS,
    "epigenome": epigenome.STEPS,
    "ecology": ecology.STEPS,
    "multiomics": multiomics.STEPS,
}
INPUTS: dict[Domain, type[BaseModel]] = {
    "rnaseq": RnaseqInputs,
    "gwas": GwasInputs,
    "simulation": NoConfig,
    "dna": dna.Inputs,
    "epigenome": epigenome.Inputs,
    "ecology": ecology.Inputs,
    "multiomics": multiomics.Inputs,
    "custom": Open,
}


def step(domain: Domain, name: str) -> Step:
    return next(s for s in STEPS[domain] if s.name == name)


@functools.cache  # built once per (domain, custom steps): create_model is slow
def config_model(domain: Domain, custom: tuple[str, ...] = ()) -> type[Strict]:
    """The model of a workflow's resolved config (the seed's config shape, every key typed):
    its domain's steps and its ``custom`` steps (``func``, ``reads``, ``checks`` and a config
    of their own keys). Any step may read steps of the workflows in ``inputs``."""
    reads = (list[str], Field(default_factory=list))
    steps: dict[str, Any] = {
        s.name: (
            create_model(
                f"{s.name}_toggle",
                __base__=Strict,
                enabled=(bool, ...),
                config=(s.config, ...),
                reads=reads,
            ),
            ...,
        )
        for s in STEPS[domain]
    }
    custom_toggle = create_model(
        "custom_toggle",
        __base__=Strict,
        enabled=(bool, True),
        config=(Open, Field(default_factory=Open)),
        func=(str, ...),
        reads=reads,
        checks=(list[str], Field(default_factory=list)),
    )
    steps |= {name: (custom_toggle, ...) for name in custom}
    steps_model = create_model(f"{domain}_steps", __base__=Strict, **steps)
    return create_model(
        f"{domain}_config",
        __base__=Strict,
        name=(str, ...),
        domain=(Literal[domain], ...),  # type: ignore[valid-type]
        work_dir=(str, ...),
        threads=(int, Field(ge=1, le=256)),
        verbose=(bool, ...),
        inputs=(dict[str, str], Field(default_factory=dict)),
        domain_specific=(INPUTS[domain], ...),
        steps=(steps_model, ...),
    )


def wiring(steps: tuple[Step, ...], enabled: Mapping[str, bool]) -> dict[str, tuple[str, ...]]:
    """For each enabled step, what it reads: its enabled steps (a disabled need is replaced
    by what that step itself reads: deps rewired past disabled steps) and, as named, the
    steps of upstream workflows (``workflow.step``)."""
    by_name = {s.name: s for s in steps}

    def resolve(name: str) -> tuple[str, ...]:
        if name not in by_name or enabled[name]:
            return (name,)
        return tuple(dict.fromkeys(n for need in by_name[name].needs for n in resolve(need)))

    return {
        s.name: tuple(dict.fromkeys(n for need in s.needs for n in resolve(need)))
        for s in steps
        if enabled[s.name]
    }
