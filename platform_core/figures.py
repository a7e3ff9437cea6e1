"""Figures for the UI: a matplotlib figure as PNG bytes, and PNG bytes as markdown (Dagster's
``MetadataValue.md`` shows the image inline).

matplotlib is not imported here: it takes half a second, and most importers only embed PNG
bytes (``markdown_image``). Figures are still drawn with the Agg backend (no display; steps
draw in worker processes and threads), as when this module called ``matplotlib.use("Agg")``
at import: if matplotlib is loaded already, that happens now; otherwise it happens the moment
anything imports matplotlib (``_AggOnImport``), before pyplot can pick a backend.
"""

from __future__ import annotations

import base64
import importlib.abc
import importlib.machinery
import importlib.util
import io
import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


class _AggOnImport(importlib.abc.MetaPathFinder):
    """Finds ``matplotlib`` once (the finders after it do) and has its loader select Agg
    right after the package runs; then leaves ``sys.meta_path``."""

    def find_spec(
        self, name: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "matplotlib":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _AggLoader(spec.loader)
        return spec


class _AggLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader  # the module's own loader from here on
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        module.use("Agg")


if "matplotlib" in sys.modules:
    sys.modules["matplotlib"].use("Agg")
elif not any(isinstance(finder, _AggOnImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AggOnImport())
