"""The omics CLI's quick commands: on a file, without a workflow or a run.

    omics plot --input results.tsv --type manhattan|qq|volcano|ma --out F.png [--title T]
    omics fasta-stats FILE [FILE ...] [--json]

What each plot needs, and the names its columns are found under: ``DESCRIPTION`` (the
verb's help) and ``science/results_table.py``. ``OmicsCli.add_verbs`` registers the verbs.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from omics_assets.science.results_table import PLOT_TYPES, read_results
from omics_assets.science.steps import InputError
from platform_core.cli import CliError, print_json
from platform_core.io import atomic_write

DPI = 150
DESCRIPTION = (
    "manhattan needs chrom, pos, p (plink2 --glm: #CHROM, POS, P; GEMMA .assoc.txt: chr, ps, "
    "p_wald or p_lrt; PLINK 1.9: CHR, BP, P); qq only p. volcano needs log2FoldChange and "
    "padj or pvalue; ma also baseMean (a DESeq2 table). Exit code 2 when the input cannot be "
    "plotted; --out is replaced only by a complete PNG."
)
UNITS = {"manhattan": "variants", "qq": "variants", "volcano": "genes", "ma": "genes"}


def add_quick_verbs(commands: Any) -> None:
    """Register ``plot`` and ``fasta-stats`` on the CLI's sub-command parsers."""
    p = commands.add_parser(
        "fasta-stats",
        help="sequences, total length, N50 and GC of FASTA files (plain or gzipped)",
        description="The seed's `dna stats`. An assembly accession is not fetched (no "
        "downloads): give a local FASTA. Exit code 2 when a file is not a FASTA.",
    )
    p.add_argument("files", nargs="+", help="FASTA files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fasta_stats)
    p = commands.add_parser(
        "plot",
        help="plot a results table: manhattan, qq, volcano or ma",
        description=DESCRIPTION,
    )
    p.add_argument(
        "--input",
        required=True,
        help="results table: .tsv, .csv or whitespace-separated, maybe gzipped",
    )
    p.add_argument("--type", required=True, choices=PLOT_TYPES, help="the plot")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--title", default=None, help="a title (default: the input's file name)")
    p.set_defaults(func=cmd_plot)


def cmd_fasta_stats(args: argparse.Namespace) -> int:
    """Print each file's statistics (a table, or JSON with --json)."""
    from omics_assets.science.dna_reference import fasta_stats

    rows = []
    for name in args.files:
        try:
            rows.append({"file": name, **fasta_stats(Path(name))})
        except (InputError, OSError) as error:
            raise CliError(str(error)) from None
    if args.json:
        print_json(rows)
    else:
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Read the table, draw the plot, write the PNG atomically; print what was plotted."""
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CliError(f"--out {out}: the plot is written as PNG: give a .png file")
    if out.is_dir():
        raise CliError(f"--out {out}: is a folder; give a .png file")
    try:
        table = read_results(Path(args.input), args.type)
    except InputError as error:
        raise CliError(str(error)) from None
    from omics_assets.science import plots  # matplotlib: only this verb pays its import

    title = Path(args.input).name if args.title is None else args.title
    plot = plots.draw(args.type, table.frame, title)
    atomic_write(out, lambda tmp: tmp.write_bytes(plot.png(DPI)))
    left_out = len(table.frame) - plot.points
    print(f"{args.type} plot of {plot.points} {UNITS[args.type]} -> {out} ({plot.note})")
    if left_out:
        print(f"{left_out} rows without usable values were left out", file=sys.stderr)
    return 0
