"""``platform_core.figures`` does not import matplotlib (half a second of every CLI's start-up),
yet figures are drawn with Agg whichever is imported first: the figures module or pyplot."""

import os
import subprocess
import sys

import pytest

PROBE = {
    "figures first": (
        "import sys\n"
        "from platform_core.figures import figure_png, markdown_image\n"
        "assert 'matplotlib' not in sys.modules\n"
        "import matplotlib.pyplot as plt\n"
    ),
    "pyplot first": (
        "import matplotlib.pyplot as plt\n"
        "from platform_core.figures import figure_png, markdown_image\n"
    ),
}
DRAW = (
    "import matplotlib\n"
    "figure, axis = plt.subplots()\n"
    "axis.plot([0, 1], [1, 0])\n"
    "png = figure_png(figure)\n"
    "assert png.startswith(b'\\x89PNG'), png[:8]\n"
    "assert markdown_image(png, 'x').startswith('![x](data:image/png;base64,')\n"
    "assert not plt.get_fignums()  # closed\n"
    "print(matplotlib.get_backend().lower())\n"
)


@pytest.mark.parametrize("order", sorted(PROBE))
def test_figures_draw_with_agg_and_import_matplotlib_only_when_drawing(order: str) -> None:
    env = {**os.environ, "MPLBACKEND": "svg"}  # as matplotlib.use("Agg"): Agg wins over it
    done = subprocess.run(
        [sys.executable, "-c", PROBE[order] + DRAW], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "agg"
