"""The dna report: per-sample mapping, duplicates and depth, the variant summary, a depth
profile along the genome and the QUAL and depth distributions of the calls (PNG)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omics_assets.science.steps import SkipStep, StepContext

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def depth_figure(depth: pd.DataFrame) -> Figure:
    """Mean depth per window (``depth_windows.tsv``) along the genome, one line per sample,
    sequences laid end to end (boundaries dotted when there are few)."""
    import matplotlib.pyplot as plt

    lengths = depth.groupby("chrom", sort=False)["end"].max()
    offsets = lengths.cumsum().shift(fill_value=0)
    x = (depth["start"] + depth["end"]) / 2 + depth["chrom"].map(offsets)
    figure, axis = plt.subplots(figsize=(9, 2.8))
    for sample in depth.columns[3:]:
        axis.plot(x / 1e3, depth[sample], lw=0.8, label=sample)
    if 1 < len(lengths) <= 30:
        for boundary in offsets.iloc[1:]:
            axis.axvline(boundary / 1e3, color="#bbbbbb", lw=0.5, ls=":")
    axis.set(xlabel="genome position (kb)", ylabel="mean depth (reads)", ylim=(0, None))
    if depth.shape[1] - 3 <= 10:
        axis.legend(fontsize=7, loc="lower right")
    axis.set_title("depth along the genome (duplicates excluded)", fontsize=9)
    return figure


def call_figure(
    calls: pd.DataFrame, kept: pd.DataFrame, min_qual: float, min_depth: float
) -> Figure:
    """Histograms of QUAL and INFO/DP: all raw calls (grey) and the calls kept (blue), the
    filter thresholds as red lines."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3))
    for axis, column, threshold, label in (
        (axes[0], "qual", min_qual, "QUAL (phred)"),
        (axes[1], "depth", min_depth, "INFO/DP (reads)"),
    ):
        values = calls[column].dropna().to_numpy(dtype=float)
        top = max(float(values.max()) if len(values) else 1.0, threshold + 1.0)
        bins = np.linspace(0.0, top, 40)
        axis.hist(values, bins=bins, color="#bbbbbb", label=f"called ({len(values)})")
        axis.hist(
            kept[column].dropna().to_numpy(dtype=float),
            bins=bins,
            color="#4c72b0",
            label=f"kept ({len(kept)})",
        )
        axis.axvline(threshold, color="tab:red", lw=0.8)
        axis.set(xlabel=label, ylabel="calls")
        axis.legend(fontsize=7)
    return figure


def report(ctx: StepContext) -> dict[str, Any]:
    """report.md: mapping (a warning when a sample's reads do not match the reference),
    duplicates and depth per sample, the variant summary; depth and call-quality plots."""
    from platform_core.figures import figure_png

    if not ctx.has_input("bam"):
        raise SkipStep("nothing to report: the bam step did not run")
    files: dict[str, str] = {"report": "report.md"}
    stats = pd.read_csv(ctx.input_file("bam", "stats"), sep="\t", dtype={"sample": str})
    lines = [
        "# DNA report: reads to variants",
        "## Samples",
        "Mapping rate: % of primary reads mapped; duplicate rate: % of mapped reads marked "
        "as duplicates; mean depth: reads per base, duplicates excluded.",
        stats.to_markdown(index=False, floatfmt=".2f"),
    ]
    floor = float(ctx.inputs["bam"]["metrics"]["mapping_rate_floor"])
    low = stats[stats["mapping_rate"] < floor]
    if len(low):
        rates = ", ".join(f"{r.sample} {r.mapping_rate:.1f} %" for r in low.itertuples())
        lines += [
            "## Warning: reads that do not match the reference",
            f"{len(low)} of {len(stats)} samples map under {floor:g} % ({rates}). This is "
            "not an error: the run went on, and variants are called from the reads that map. "
            "Check that the reads come from the organism of the reference (another species, "
            "contamination or a wrong samplesheet row lower the mapping rate).",
        ]
    depth = pd.read_csv(ctx.input_file("bam", "depth"), sep="\t", dtype={"chrom": str})
    (ctx.out / "depth.png").write_bytes(figure_png(depth_figure(depth)))
    files["depth_plot"] = "depth.png"
    if ctx.has_input("variants"):
        metrics = ctx.inputs["variants"]["metrics"]
        kept = pd.read_csv(ctx.input_file("variants", "variants"), sep="\t", dtype={"chrom": str})
        lines += [
            "## Variants",
            f"{metrics['variants']} calls kept ({metrics['filter']}): {metrics['snvs']} SNVs, "
            f"{metrics['indels']} indels, ts/tv {metrics['ts_tv']}; "
            f"{metrics['filtered_out']} filtered out.",
            kept.sort_values("qual", ascending=False).head(20).to_markdown(index=False)
            if len(kept)
            else "(no variant passed the filters)",
        ]
        if ctx.has_input("call"):
            calls = pd.read_csv(ctx.input_file("call", "calls"), sep="\t", dtype={"chrom": str})
            figure = call_figure(calls, kept, metrics["min_qual"], metrics["min_depth"])
            (ctx.out / "call_quality.png").write_bytes(figure_png(figure))
            files["call_quality_plot"] = "call_quality.png"
    (ctx.out / "report.md").write_text("\n\n".join(lines) + "\n")
    return {"files": files, "metrics": {"samples": len(stats), "plots": len(files) - 1}}
