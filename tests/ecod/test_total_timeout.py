"""ECOD's total timeout (the seed's ``total_timeout``): the ``dagster/max_runtime`` tag of its
jobs, from the platform config file with ``ECOD_TOTAL_TIMEOUT`` over it, read when the
Definitions are built."""

from pathlib import Path

import pytest

from ecod_assets.defs.jobs import JOB_BY_MODE, MAX_RUNTIME_TAG
from ecod_assets.location import LOCATION
from platform_core.platform_config import CONFIG_ENV, ConfigError


def job_timeouts() -> set[str | None]:
    """The ``dagster/max_runtime`` of every ECOD job, as freshly built Definitions have it."""
    defs = LOCATION.definitions()
    return {defs.resolve_job_def(name).tags.get(MAX_RUNTIME_TAG) for name in JOB_BY_MODE.values()}


def platform_file(folder: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new platform config file (a new name each time: the config is cached per file)."""
    path = folder / f"platform{len(list(folder.glob('platform*.yaml')))}.yaml"
    path.write_text(text)
    monkeypatch.setenv(CONFIG_ENV, str(path))
    return path


@pytest.fixture(autouse=True)
def no_timeout_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the variable itself, if at all."""
    monkeypatch.setenv("ECOD_TOTAL_TIMEOUT", "")


def test_default_is_one_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    platform_file(tmp_path, "locations:\n  ecod:\n    workers: 1\n", monkeypatch)
    assert job_timeouts() == {"86400"}


def test_the_platform_file_sets_it_and_the_variable_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform_file(tmp_path, "locations:\n  ecod:\n    total_timeout_seconds: 600\n", monkeypatch)
    assert job_timeouts() == {"600"}
    monkeypatch.setenv("ECOD_TOTAL_TIMEOUT", "120")
    assert job_timeouts() == {"120"}  # read again when the Definitions are built again


@pytest.mark.parametrize(
    ("in_file", "variable"), [("0", ""), ("null", ""), ("600", "none"), ("600", "0")]
)
def test_zero_or_none_is_no_ceiling(
    in_file: str, variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = f"locations:\n  ecod:\n    total_timeout_seconds: {in_file}\n"
    platform_file(tmp_path, text, monkeypatch)
    monkeypatch.setenv("ECOD_TOTAL_TIMEOUT", variable)
    assert job_timeouts() == {None}


def test_a_bad_value_names_the_file_and_line_or_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "locations:\n  ecod:\n    workers: 2\n    total_timeout_seconds: soon\n"
    path = platform_file(tmp_path, text, monkeypatch)
    with pytest.raises(ConfigError, match=rf"{path} line 4: .*total_timeout_seconds"):
        LOCATION.definitions()
    platform_file(tmp_path, "locations:\n  ecod:\n    total_timeout_seconds: -5\n", monkeypatch)
    with pytest.raises(ConfigError, match=r"total_timeout_seconds: .*greater than or equal to 0"):
        LOCATION.definitions()
    platform_file(tmp_path, "locations:\n  ecod:\n    workers: 1\n", monkeypatch)
    monkeypatch.setenv("ECOD_TOTAL_TIMEOUT", "a day")
    with pytest.raises(ConfigError, match=r"\$ECOD_TOTAL_TIMEOUT: .*total_timeout_seconds"):
        LOCATION.definitions()
