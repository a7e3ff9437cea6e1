"""Omics fixtures: one data root + instance per test module; step runners for science tests."""

import gzip
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from omics_assets.config import Layer, resolve
from omics_assets.demo import unpack_eur_subset
from omics_assets.science.domains import Domain, step
from omics_assets.science.steps import StepContext, execute_step
from tests.support import isolated_home


@pytest.fixture(scope="module")
def omics_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$DAGSTER_HOME`` and ``$PLATFORM_DATA_ROOT`` under one folder."""
    with isolated_home(tmp_path_factory.mktemp("omics"), OMICS_INBOX_SETTLE_SECONDS="0") as root:
        yield root


StepRunner = Callable[..., dict[str, Any]]


@pytest.fixture
def run_steps(tmp_path: Path) -> StepRunner:
    """Run a domain's steps in order outside Dagster, each in its own folder under tmp_path:
    ``run_steps(domain, names, domain_specific, **step_config_overrides)`` -> results by step
    (each result also has ``dir``). Configs are the domain's defaults with the overrides."""

    def run(
        domain: Domain,
        names: list[str],
        domain_specific: Mapping[str, Any],
        **overrides: Mapping[str, Any],
    ) -> dict[str, Any]:
        config = resolve(domain, [Layer("test", {"name": "test", "domain": domain})]).config
        results: dict[str, Any] = {}
        for name in names:
            out = tmp_path / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            ctx = StepContext(
                step=name,
                config={**config["steps"][name]["config"], **overrides.get(name, {})},
                domain_specific=dict(domain_specific),
                threads=2,
                out=out,
                inputs={k: v["output"] for k, v in results.items()},
                input_dirs={k: v["dir"] for k, v in results.items()},
                enabled_steps=frozenset(names),
            )
            result = execute_step(step(domain, name).run, ctx)
            assert result["status"] == "completed", (name, result["errors"], result.get("reason"))
            results[name] = {**result, "dir": out}
        return results

    return run


@pytest.fixture(scope="session")
def eur_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1000 Genomes EUR subset of bolt-lmm-example, unpacked: its PLINK prefix."""
    return unpack_eur_subset(tmp_path_factory.mktemp("bolt"))


def gunzip(source: Path, target: Path) -> Path:
    with gzip.open(source, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return target
