"""The ecology report step: the PCoA coloured by the factor, diversity boxplots by it, the
PERMANOVA table (or why it was not tested) and a summary, as markdown and PNGs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from omics_assets.science.ecology_table import factor_levels
from omics_assets.science.sample_tables import read_step_table
from omics_assets.science.steps import StepContext


def report(ctx: StepContext) -> dict[str, Any]:
    """The PCoA coloured by the factor, diversity boxplots by the factor, the PERMANOVA
    table and a summary (report.md and PNGs)."""
    from omics_assets.science.ecology_plots import diversity_png, ordination_png

    groups = factor_levels(ctx)
    diversity_table = read_step_table(ctx.input_file("diversity", "diversity"))
    (ctx.out / "diversity.png").write_bytes(diversity_png(diversity_table, groups))
    files = {"diversity_plot": "diversity.png"}
    lines = [f"# Community report: {len(diversity_table)} samples"]
    by = (
        groups.reindex(diversity_table.index)
        if groups is not None
        else pd.Series("all samples", index=diversity_table.index, name="")
    )
    summary = diversity_table[["richness", "shannon", "simpson"]].groupby(by).median()
    lines += ["## Alpha diversity (median)", summary.to_markdown(floatfmt=".3f")]
    if ctx.has_input("ordination"):
        coordinates = read_step_table(ctx.input_file("ordination", "pcoa"))
        eig = pd.read_csv(ctx.input_file("ordination", "eigenvalues"), sep="\t")
        metric = ctx.inputs["ordination"]["metrics"]["metric"]
        if coordinates.shape[1] >= 2:
            explained = eig["explained"].tolist()
            png = ordination_png(coordinates, explained, groups, f"PCoA, {metric}")
            (ctx.out / "ordination.png").write_bytes(png)
            files["ordination_plot"] = "ordination.png"
        else:
            lines += ["## PCoA", "Fewer than two axes with positive eigenvalues: no plot."]
    if ctx.has_input("permanova"):
        tested = ctx.inputs["permanova"]["metrics"]
        tests = pd.read_csv(ctx.input_file("permanova", "permanova"), sep="\t")
        table = tests.to_markdown(index=False, floatfmt=".4g")
        lines += ["## PERMANOVA", table if tested["tested"] else f"Not tested: {tested['reason']}."]
    (ctx.out / "report.md").write_text("\n\n".join(lines) + "\n")
    return {"files": {**files, "report": "report.md"}, "metrics": {"samples": len(diversity_table)}}
