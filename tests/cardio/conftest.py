"""Cardio fixtures: one data root + instance per test module."""

from collections.abc import Iterator
from pathlib import Path

import matplotlib
import pytest

from tests.support import isolated_home


@pytest.fixture(scope="module")
def cardio_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$DAGSTER_HOME`` and ``$PLATFORM_DATA_ROOT`` under one folder. Stage workers are new
    processes that import matplotlib: ``MPLCONFIGDIR`` keeps them on this process's font
    cache, not one under a ``$HOME`` a test replaced (``outside_untouched`` watches it)."""
    with isolated_home(
        tmp_path_factory.mktemp("cardio"),
        CARDIO_INBOX_SETTLE_SECONDS="0",
        MPLCONFIGDIR=matplotlib.get_cachedir(),
    ) as root:
        yield root
