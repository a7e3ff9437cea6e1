"""The batch summary shown on a classification materialization: a table and a PNG plot."""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ecod_assets.science.partition import QUALITY_LABELS
from platform_core.figures import markdown_image


def summary_png(partition: pd.DataFrame) -> bytes:
    """Bar plots of chains by quality label and of domains per chain."""
    chains = partition.drop_duplicates("chain_id")
    per_chain = partition.groupby("chain_id")["domain_number"].max().value_counts().sort_index()
    figure = Figure(figsize=(8, 3), dpi=80)
    left, right = figure.subplots(1, 2)
    quality = chains["quality"].value_counts().reindex(list(QUALITY_LABELS), fill_value=0)
    left.barh(quality.index.astype(str)[::-1], quality.to_numpy()[::-1], color="#4c72b0")
    left.set_xlabel("chains")
    left.set_title("chains by quality")
    right.bar(per_chain.index.astype(str), per_chain.to_numpy(), color="#55a868")
    right.set_title("domains per chain")
    right.set_xlabel("domains")
    right.set_ylabel("chains")
    # fixed margins: tight_layout would measure every label first, doubling the render time
    figure.subplots_adjust(left=0.16, right=0.98, bottom=0.2, top=0.88, wspace=0.3)
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def summary_markdown(partition: pd.DataFrame) -> str:
    """Chains per quality label as a markdown table, followed by the embedded plot."""
    chains = partition.drop_duplicates("chain_id")
    table = chains["quality"].value_counts().rename_axis("quality").reset_index(name="chains")
    image = markdown_image(summary_png(partition), "batch summary")
    return f"{table.to_markdown(index=False)}\n\n{image}"
