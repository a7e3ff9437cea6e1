"""Figures for the UI: a matplotlib figure as PNG bytes, and PNG bytes as markdown (Dagster's
``MetadataValue.md`` shows the image inline)."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure


def figure_png(figure: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure, cropped to its content; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown that embeds PNG bytes as an image."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
