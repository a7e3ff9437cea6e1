"""``omics plot``: a quick plot of a results table, without a workflow or a run.

    omics plot --input results.tsv --type manhattan|qq|volcano|ma --out F.png [--title T]

What each plot needs, and the names its columns are found under: ``DESCRIPTION`` (the
verb's help) and ``science/results_table.py``. ``OmicsCli.add_verbs`` registers the verb.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from omics_assets.science.results_table import PLOT_TYPES, read_results
from omics_assets.science.steps import InputError
from platform_core.cli import CliError
from platform_core.io import atomic_write

DPI = 150
DESCRIPTION = (
    "manhattan needs chrom, pos, p (plink2 --glm: #CHROM, POS, P; GEMMA .assoc.txt: chr, ps, "
    "p_wald or p_lrt; PLINK 1.9: CHR, BP, P); qq only p. volcano needs log2FoldChange and "
    "padj or pvalue; ma also baseMean (a DESeq2 table). Exit code 2 when the input cannot be "
    "plotted; --out is replaced only by a complete PNG."
)
UNITS = {"manhattan": "variants", "qq": "variants", "volcano": "genes", "ma": "genes"}


def add_plot_verb(commands: Any) -> None:
    """Register ``plot`` on the CLI's sub-command parsers (``add_subparsers``)."""
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
