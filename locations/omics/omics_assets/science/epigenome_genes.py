"""Genes of a GTF and the genes each DMR overlaps or lies nearest to (1-based inclusive bp).

The shared GTF reader, ``reads.read_gene_map``, maps transcripts to genes without their
coordinates, so the annotate step reads gene spans itself (plain or gzipped, recognised by the
magic bytes as every reader of the domain does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from omics_assets.science.reads import open_text
from omics_assets.science.steps import InputError

GTF_COLUMNS = ("chrom", "source", "feature", "start", "end", "score", "strand", "frame", "attr")


def read_genes(path: Path) -> pd.DataFrame:
    """Genes of a GTF (``gene`` lines, else the span of each gene_id's lines): ``chrom,
    start, end, strand, gene_id, gene_name`` (1-based inclusive), sorted by chrom and start."""
    if not path.is_file():
        raise InputError(f"annotation: {path} does not exist")
    try:
        with open_text(path) as handle:
            gtf = pd.read_csv(
                handle,
                sep="\t",
                comment="#",
                header=None,
                names=list(GTF_COLUMNS),
                dtype={"chrom": str, "feature": str, "strand": str, "attr": str},
            )
    except (ValueError, pd.errors.ParserError, OSError, EOFError) as error:
        raise InputError(
            f"annotation: {path}: not a GTF (9 tab-separated columns): {error}"
        ) from None
    if not all(pd.api.types.is_integer_dtype(gtf[c]) for c in ("start", "end")):
        raise InputError(f"annotation: {path}: start and end (columns 4, 5) must be integers")
    gtf["gene_id"] = gtf["attr"].str.extract(r'gene_id "([^"]+)"', expand=False)
    if gtf["gene_id"].isna().all():
        raise InputError(f"annotation: {path}: no gene_id attribute: not a GTF")
    names = gtf["attr"].str.extract(r'gene_name "([^"]+)"', expand=False)
    gtf["gene_name"] = names.fillna(gtf["gene_id"])
    if (gtf["feature"] == "gene").any():
        gtf = gtf[gtf["feature"] == "gene"]
    genes = (
        gtf.dropna(subset=["gene_id"])
        .groupby("gene_id", as_index=False)
        .agg(
            chrom=("chrom", "first"),
            start=("start", "min"),
            end=("end", "max"),
            strand=("strand", "first"),
            gene_name=("gene_name", "first"),
        )
    )
    genes = genes.sort_values(["chrom", "start", "end"], kind="stable", ignore_index=True)
    return genes[["chrom", "start", "end", "strand", "gene_id", "gene_name"]]


def annotate_regions(regions: pd.DataFrame, genes: pd.DataFrame, max_distance: int) -> pd.DataFrame:
    """``regions`` (``chrom, start, end``) with ``overlapping_genes`` (comma-separated, by
    start), ``nearest_gene`` (an overlapping one first, else the closest; "" when farther than
    ``max_distance`` bp) and ``distance`` (bp between them, 0 when overlapping; integer, empty
    when there is none). One pass per chromosome: sorted gene starts and ends bound the
    candidates of every region at once."""
    overlapping = np.full(len(regions), "", dtype=object)
    nearest = np.full(len(regions), "", dtype=object)
    distance = np.full(len(regions), -1, dtype=np.int64)
    chroms = regions["chrom"].astype(str).to_numpy()
    for chrom, on in genes.groupby("chrom", sort=False):
        rows = np.flatnonzero(chroms == chrom)
        if not len(rows):
            continue
        start = regions["start"].to_numpy(dtype=np.int64)[rows]
        end = regions["end"].to_numpy(dtype=np.int64)[rows]
        g_start, g_end = on["start"].to_numpy(np.int64), on["end"].to_numpy(np.int64)
        name = on["gene_name"].to_numpy(dtype=object)
        # overlaps: a gene starting in [start - longest gene, end] and ending at >= start
        lo = np.searchsorted(g_start, start - int((g_end - g_start).max()), side="left")
        hi = np.searchsorted(g_start, end, side="right")
        region = np.repeat(np.arange(len(rows)), hi - lo)
        gene = np.arange(len(region)) - np.repeat(np.cumsum(hi - lo) - (hi - lo), hi - lo)
        gene += np.repeat(lo, hi - lo)
        hit = g_end[gene] >= start[region]
        region, gene = region[hit], gene[hit]
        for at, members in pd.Series(gene).groupby(region):
            overlapping[rows[at]] = ",".join(name[members.to_numpy()])
        # else the closest gene ending before the region or starting after it
        by_end = np.argsort(g_end, kind="stable")
        before = np.searchsorted(g_end[by_end], start, side="left") - 1
        after = np.searchsorted(g_start, end, side="right")
        gap_before = np.where(before >= 0, start - g_end[by_end[np.maximum(before, 0)]], np.inf)
        gap_after = np.where(
            after < len(g_start), g_start[np.minimum(after, len(g_start) - 1)] - end, np.inf
        )
        closest = np.where(
            gap_before <= gap_after,
            by_end[np.maximum(before, 0)],
            np.minimum(after, len(g_start) - 1),
        )
        gap = np.minimum(gap_before, gap_after)
        first_hit = pd.Series(gene).groupby(region).first()
        closest[first_hit.index.to_numpy()] = first_hit.to_numpy()
        gap[first_hit.index.to_numpy()] = 0
        near = gap <= max_distance
        nearest[rows[near]] = name[closest[near]]
        distance[rows[near]] = gap[near].astype(np.int64)
    found = pd.Series(distance, index=regions.index, dtype="Int64")
    found[distance < 0] = pd.NA
    return regions.assign(overlapping_genes=overlapping, nearest_gene=nearest, distance=found)
