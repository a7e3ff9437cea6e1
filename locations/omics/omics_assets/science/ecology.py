"""Community ecology: the ecology domain's steps.

community (a samples x taxa table and its metadata, checked) -> qc (empty samples,
singletons) -> diversity (richness, Shannon, Simpson) -> rarefaction -> beta (Bray-Curtis,
Jaccard) -> ordination (PCoA) -> permanova (by the metadata ``factor``) -> report. The
statistics follow R's vegan (:mod:`ecology_stats`); the tests compare them with vegan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from omics_assets.science.ecology_report import report
from omics_assets.science.ecology_stats import (
    alpha_diversity,
    bray_curtis,
    jaccard,
    pcoa,
    permanova,
    rarefaction_curves,
    rarefy,
)
from omics_assets.science.ecology_table import factor_levels, read_community, read_metadata
from omics_assets.science.sample_tables import read_step_table
from omics_assets.science.specs import FilePath, NoConfig, Step, Strict
from omics_assets.science.steps import InputError, SkipStep, StepContext

Metric = Literal["bray_curtis", "jaccard"]
DISTANCES = {"bray_curtis": bray_curtis, "jaccard": jaccard}


class Inputs(Strict):
    """The ecology domain's ``domain_specific`` keys."""

    counts: FilePath  # samples in rows, the first column the sample ID, one column per taxon
    metadata: FilePath  # TSV: a ``sample`` column and factors
    factor: str | None  # the metadata column PERMANOVA tests (and the plots colour by)


class CommunityConfig(Strict):
    values: Literal["counts", "abundances"] = Field(
        description="counts: integer individuals; abundances: any non-negative number (cover, "
        "cover classes, biomass), not rarefied: they are not individuals"
    )


class EcologyQcConfig(Strict):
    min_total: float = Field(ge=0, description="samples summing to less are dropped")
    singletons: Literal["keep", "drop"] = Field(
        description="taxa with a total of exactly 1 over all samples"
    )


class RarefactionConfig(Strict):
    depth: int | None = Field(ge=1, description="individuals; null: the smallest sample total")
    curve_points: int = Field(ge=2, le=500, description="depths per rarefaction curve")


class OrdinationConfig(Strict):
    metric: Metric
    axes: int = Field(ge=2, le=50, description="PCoA axes written (positive eigenvalues only)")


class PermanovaConfig(Strict):
    metrics: list[Metric] = Field(min_length=1)
    permutations: int = Field(ge=9, le=100_000)
    seed: int


def _write(table: pd.DataFrame, path: Path) -> None:
    """A TSV with full precision (floats round-trip)."""
    table.to_csv(path, sep="\t", index=table.index.name is not None)


def _table(ctx: StepContext) -> pd.DataFrame:
    """The community table after QC (or as read, with QC disabled: its need is rewired)."""
    source = "qc" if ctx.has_input("qc") else "community"
    return read_step_table(ctx.input_file(source, "table"))


def community(ctx: StepContext) -> dict[str, Any]:
    """Read and check the community table and the samples' metadata (bad input named by
    file, line and column)."""
    spec = ctx.domain_specific
    if not spec.get("counts"):
        raise InputError("domain_specific.counts is not set: give a community table (TSV/CSV)")
    counts = Path(spec["counts"])
    values = ctx.config["values"]
    table = read_community(counts, integers=values == "counts")
    factor = spec.get("factor") or None
    if spec.get("metadata"):
        metadata = read_metadata(Path(spec["metadata"]), table, counts, factor)
    elif factor:
        raise InputError(f"domain_specific.factor is {factor!r} but no metadata file is set")
    else:
        metadata = pd.DataFrame(index=pd.Index(table.samples, name="sample"))
    frame = table.frame()
    if np.all(table.values == np.round(table.values)):
        frame = frame.astype(np.int64)
    _write(frame, ctx.out / "community.tsv")
    _write(metadata, ctx.out / "metadata.tsv")
    metrics: dict[str, Any] = {
        "samples": len(table.samples),
        "taxa": len(table.taxa),
        "total": float(table.values.sum()),
        "values": values,
    }
    if factor:
        metrics["factor_levels"] = int(metadata[factor].nunique())
    return {"files": {"table": "community.tsv", "metadata": "metadata.tsv"}, "metrics": metrics}


def qc(ctx: StepContext) -> dict[str, Any]:
    """Drop taxa absent from every sample, singletons (``singletons: drop``) and then samples
    that are empty or sum to less than ``min_total``; a per-sample table says why."""
    table = read_step_table(ctx.input_file("community", "table"))
    taxon_totals = table.sum(axis=0)
    singletons = taxon_totals == 1
    drop_taxa = (taxon_totals == 0) | (singletons & (ctx.config["singletons"] == "drop"))
    kept_taxa = table.loc[:, ~drop_taxa]
    totals = kept_taxa.sum(axis=1)
    min_total = float(ctx.config["min_total"])
    reason = np.where(totals == 0, "empty", np.where(totals < min_total, "below min_total", ""))
    report = pd.DataFrame(
        {
            "total": totals,
            "richness": (kept_taxa > 0).sum(axis=1),
            "singletons": (table.loc[:, singletons] > 0).sum(axis=1),
            "kept": reason == "",
            "reason": reason,
        }
    )
    kept = kept_taxa.loc[report["kept"]]
    dropped = report.index[~report["kept"]].tolist()
    if dropped:
        ctx.warnings.append(f"{len(dropped)} sample(s) dropped: {', '.join(dropped[:10])}")
    if len(kept) == 0:
        raise SkipStep("no sample passed QC (all empty or below min_total)")
    _write(report, ctx.out / "qc.tsv")
    _write(kept, ctx.out / "table.tsv")
    return {
        "files": {"qc": "qc.tsv", "table": "table.tsv"},
        "metrics": {
            "samples_kept": len(kept),
            "samples_dropped": len(dropped),
            "taxa_kept": kept.shape[1],
            "singletons": int(singletons.sum()),
            "singletons_dropped": int(singletons.sum())
            if ctx.config["singletons"] == "drop"
            else 0,
            "absent_taxa_dropped": int((taxon_totals == 0).sum()),
        },
        "checks": {
            "samples_kept": {
                "passed": not dropped,
                "description": f"{len(dropped)} of {len(report)} samples dropped "
                f"(empty or total < {min_total:g})",
            }
        },
    }


def diversity(ctx: StepContext) -> dict[str, Any]:
    """Alpha diversity per sample: richness, Shannon (natural log), Simpson (1 - sum p^2, as
    vegan's), inverse Simpson and Pielou's evenness."""
    table = _table(ctx)
    if (table.sum(axis=1) == 0).any():
        empty = table.index[table.sum(axis=1) == 0][0]
        raise InputError(f"sample {empty!r} is empty: its diversity is undefined (enable qc)")
    result = alpha_diversity(table.to_numpy(dtype=float))
    result.index = table.index
    _write(result, ctx.out / "diversity.tsv")
    return {
        "files": {"diversity": "diversity.tsv"},
        "metrics": {
            "samples": len(result),
            "mean_richness": round(float(result["richness"].mean()), 3),
            "mean_shannon": round(float(result["shannon"].mean()), 4),
            "mean_simpson": round(float(result["simpson"].mean()), 4),
        },
    }


def rarefaction(ctx: StepContext) -> dict[str, Any]:
    """Expected richness at a common depth (exact hypergeometric expectation and its
    standard error, as vegan's ``rarefy``) and rarefaction curves. Counts of individuals
    only: with ``values: abundances`` it completes without curves and says why."""
    from omics_assets.science.ecology_plots import rarefaction_png

    if ctx.inputs["community"]["metrics"]["values"] != "counts":
        reason = (
            "not rarefied: the table holds abundances (steps.community.config.values), "
            "not counts of individuals, which rarefaction draws"
        )
        (ctx.out / "report.md").write_text(f"# Rarefaction\n\n{reason.capitalize()}.\n")
        return {"files": {"report": "report.md"}, "metrics": {"rarefied": False, "reason": reason}}
    table = _table(ctx)
    values = table.to_numpy(dtype=float)
    totals = values.sum(axis=1)
    depth = int(ctx.config["depth"] or totals.min())
    rows = [rarefy(row, depth) for row in values]
    expected = pd.DataFrame(rows, index=table.index, columns=["expected_richness", "se"])
    expected.insert(0, "depth", depth)
    short = table.index[totals < depth].tolist()
    if short:
        ctx.warnings.append(
            f"{len(short)} sample(s) have fewer than {depth} individuals (NaN): "
            + ", ".join(short[:10])
        )
    curves = rarefaction_curves(table, int(ctx.config["curve_points"]))
    _write(expected, ctx.out / "rarefaction.tsv")
    curves.to_csv(ctx.out / "rarefaction_curves.tsv", sep="\t", index=False)
    (ctx.out / "rarefaction.png").write_bytes(rarefaction_png(curves, depth))
    (ctx.out / "report.md").write_text(
        f"# Rarefaction\n\nExpected richness at {depth} individuals: median "
        f"{expected['expected_richness'].median():.2f} (range "
        f"{expected['expected_richness'].min():.2f}-{expected['expected_richness'].max():.2f})"
        f"; {len(short)} sample(s) smaller than the depth.\n"
    )
    return {
        "files": {
            "rarefaction": "rarefaction.tsv",
            "curves": "rarefaction_curves.tsv",
            "plot": "rarefaction.png",
            "report": "report.md",
        },
        "metrics": {"rarefied": True, "depth": depth, "samples_below_depth": len(short)},
        "checks": {
            "depth": {
                "passed": not short,
                "description": f"{len(short)} sample(s) below the depth of {depth} individuals",
            }
        },
    }


def beta(ctx: StepContext) -> dict[str, Any]:
    """Bray-Curtis and binary Jaccard dissimilarities between every two samples (square
    matrices, as vegan's ``vegdist``)."""
    table = _table(ctx)
    if len(table) < 2:
        raise InputError(f"beta diversity needs at least 2 samples; {len(table)} passed QC")
    empty = table.index[table.sum(axis=1) == 0].tolist()
    if empty:
        raise InputError(f"sample {empty[0]!r} is empty: its dissimilarities are undefined")
    files, metrics = {}, {}
    for name, distance in DISTANCES.items():
        matrix = distance(table.to_numpy(dtype=float))
        frame = pd.DataFrame(matrix, index=table.index, columns=table.index)
        _write(frame, ctx.out / f"{name}.tsv")
        files[name] = f"{name}.tsv"
        metrics[f"mean_{name}"] = round(float(matrix[np.triu_indices(len(matrix), 1)].mean()), 4)
    return {"files": files, "metrics": metrics}


def ordination(ctx: StepContext) -> dict[str, Any]:
    """Principal coordinates (PCoA) of the chosen dissimilarity; eigenvalues with their
    share of the positive ones (negative eigenvalues of a non-Euclidean metric counted).
    With fewer than two positive axes (e.g. two samples) the report draws no PCoA."""
    distance = read_step_table(ctx.input_file("beta", ctx.config["metric"]))
    result = pcoa(distance.to_numpy())
    axes = min(int(ctx.config["axes"]), result.coordinates.shape[1])
    names = [f"PC{i}" for i in range(1, axes + 1)]
    coordinates = pd.DataFrame(result.coordinates[:, :axes], index=distance.index, columns=names)
    explained = np.full(len(result.eigenvalues), np.nan)
    explained[: len(result.explained)] = result.explained
    eigenvalues = pd.DataFrame(
        {
            "axis": np.arange(1, len(explained) + 1),
            "eigenvalue": result.eigenvalues,
            "explained": explained,
        }
    )
    _write(coordinates, ctx.out / "pcoa.tsv")
    eigenvalues.to_csv(ctx.out / "pcoa_eigenvalues.tsv", sep="\t", index=False)
    shares = [round(float(share), 4) for share in result.explained[:2]]
    shares += [None] * (2 - len(shares))
    return {
        "files": {"pcoa": "pcoa.tsv", "eigenvalues": "pcoa_eigenvalues.tsv"},
        "metrics": {
            "metric": ctx.config["metric"],
            "axes": axes,
            "pc1_explained": shares[0],
            "pc2_explained": shares[1],
            "negative_eigenvalues": int((result.eigenvalues < -1e-10).sum()),
        },
    }


PERMANOVA_COLUMNS = [
    "factor", "pseudo_f", "r2", "p", "metric", "df_factor", "df_residual", "permutations"
]  # fmt: skip


def permanova_step(ctx: StepContext) -> dict[str, Any]:
    """PERMANOVA of each chosen dissimilarity by the metadata ``factor`` (pseudo-F, R^2 and
    a permutation p with ``permutations`` seeded shuffles, as vegan's ``adonis2``). Without
    a factor: an empty table and ``tested: false`` (the report still runs)."""
    groups = factor_levels(ctx)
    if groups is None:
        pd.DataFrame(columns=PERMANOVA_COLUMNS).to_csv(
            ctx.out / "permanova.tsv", sep="\t", index=False
        )
        reason = "no domain_specific.factor to test"
        return {
            "files": {"permanova": "permanova.tsv"},
            "metrics": {"tested": False, "reason": reason},
        }
    name = str(ctx.domain_specific["factor"])
    rows = []
    for metric in ctx.config["metrics"]:
        distance = read_step_table(ctx.input_file("beta", metric))
        labels = groups.reindex(distance.index).to_numpy()
        levels = pd.unique(labels)
        if len(levels) < 2 or len(labels) <= len(levels):
            raise InputError(
                f"PERMANOVA by {name!r} needs at least 2 levels and more samples than levels: "
                f"{len(labels)} samples, levels {', '.join(map(str, levels))}"
            )
        test = permanova(
            distance.to_numpy(), labels, int(ctx.config["permutations"]), int(ctx.config["seed"])
        )
        rows.append({"factor": name, **vars(test), "metric": metric})
    pd.DataFrame(rows)[PERMANOVA_COLUMNS].to_csv(ctx.out / "permanova.tsv", sep="\t", index=False)
    metrics: dict[str, Any] = {
        "tested": True,
        "factor": name,
        "permutations": int(ctx.config["permutations"]),
    }
    for row in rows:
        metrics |= {f"r2_{row['metric']}": round(row["r2"], 4), f"p_{row['metric']}": row["p"]}
    return {"files": {"permanova": "permanova.tsv"}, "metrics": metrics}


STEPS: tuple[Step, ...] = (
    Step("community", community, (), CommunityConfig, required=True),
    Step(
        "qc",
        qc,
        ("community",),
        EcologyQcConfig,
        checks=(("samples_kept", "no sample is empty or below min_total"),),
    ),
    Step(
        "diversity",
        diversity,
        ("qc",),
        NoConfig,
        export=("sample", "richness", "shannon", "simpson"),
    ),
    Step(
        "rarefaction",
        rarefaction,
        ("qc", "community"),
        RarefactionConfig,
        checks=(("depth", "every sample has at least the rarefaction depth"),),
    ),
    Step("beta", beta, ("qc",), NoConfig),
    Step("ordination", ordination, ("beta",), OrdinationConfig),
    Step(
        "permanova",
        permanova_step,
        ("beta", "community"),
        PermanovaConfig,
        export=("factor", "pseudo_f", "r2", "p", "metric"),
    ),
    Step("report", report, ("community", "diversity", "ordination", "permanova"), NoConfig),
)
