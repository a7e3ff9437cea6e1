"""The import rules of the architecture (docs/architecture.md), read from the source:

- ``science/`` imports no Dagster, not even through another module;
- locations do not import each other;
- only the fence (``platform_core/dagster_internals.py``) imports ``dagster._``, and each of its
  names says why, its public alternative, and names a test that exists;
- nothing that builds the graph (assets, sensors, resources, definitions) imports a CLI.
"""

import ast
import importlib.util
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from platform_core import dagster_internals

ROOT = Path(__file__).resolve().parent.parent
LOCATIONS = ("tetra_assets", "ecod_assets", "imaging_assets", "cardio_assets", "omics_assets")
PRODUCT = ("platform_core", *LOCATIONS)
FENCE = ROOT / "platform_core" / "dagster_internals.py"
# the command-line side: argument parsing, the in-process runner, the daemon hand-off
CLI_MODULES = {
    "platform_core.cli",
    "platform_core.backfill",
    "platform_core.commands",
    "platform_core.daemon",
    "platform_core.platform_cli",
    "platform_core.session",
}
CLI_MODULES |= {f"{location}.cli" for location in LOCATIONS}
CLI_MODULES |= {  # the Python APIs' runs and the CLI's own verbs: the user's side
    "imaging_assets.pipelines",
    "omics_assets.api",
    "omics_assets.quick_commands",
}


def _package_dir(package: str) -> Path:
    """Where a top-level package lies (a location's under locations/<name>/)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, package
    return Path(spec.origin).parent


def _module(path: Path) -> str:
    top = next(p for p in (*PRODUCT, "bench", "tests") if _package_dir_or_root(p) in path.parents)
    base = _package_dir_or_root(top).parent
    return ".".join(path.relative_to(base).with_suffix("").parts).removesuffix(".__init__")


def _package_dir_or_root(name: str) -> Path:
    return ROOT / name if name in ("bench", "tests") else _package_dir(name)


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; ``from . import x`` resolved)."""
    names = set()
    package = _module(path).rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def _files(*packages: str, under: str = "") -> list[Path]:
    return sorted(
        p for package in packages for p in (_package_dir_or_root(package) / under).rglob("*.py")
    )


def test_science_imports_no_dagster() -> None:
    direct = {
        str(path.relative_to(ROOT)): sorted(
            n for n in _imports(path) if n.split(".")[0] == "dagster"
        )
        for location in LOCATIONS
        for path in _files(location, under="science")
    }
    assert not {k: v for k, v in direct.items() if v}
    modules = [_module(p) for location in LOCATIONS for p in _files(location, under="science")]
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert len(modules) > 30  # every location's science
    assert json.loads(loaded.stdout) == [], "a science module pulls Dagster in indirectly"


@pytest.mark.parametrize("location", LOCATIONS)
def test_locations_do_not_import_each_other(location: str) -> None:
    others = set(LOCATIONS) - {location}
    found = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.split(".")[0] in others)
        for path in _files(location)
    }
    assert not {k: v for k, v in found.items() if v}


def test_only_the_fence_imports_dagster_private_names() -> None:
    private = re.compile(r"^dagster\._")
    found = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if private.match(n))
        for path in _files(*PRODUCT, "bench", "tests")
        if path != FENCE
    }
    assert not {k: v for k, v in found.items() if v}
    sources = dagster_internals._SOURCES  # the fence imports each name when first used
    assert sources and all(private.match(module) for module, _ in sources.values())
    for name in sources:  # each still exists where the fence says
        assert getattr(dagster_internals, name) is not None, name


def test_every_fenced_name_says_why_and_names_a_test_that_exists() -> None:
    names = set(dagster_internals.__all__) - {"PINS", "INSTANCE_METHODS"}
    assert names == set(dagster_internals.PINS) == set(dagster_internals._SOURCES)
    for name, pin in dagster_internals.PINS.items():
        assert pin.why and pin.public_alternative, name
        file, test = pin.test.split("::")
        assert re.search(rf"^def {test}\(", (ROOT / file).read_text(), re.M), (name, pin.test)


def test_the_graph_side_imports_no_cli() -> None:
    graph_side = [p for p in _files(*PRODUCT) if _module(p) not in CLI_MODULES]
    found = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & CLI_MODULES) for path in graph_side
    }
    assert not {k: v for k, v in found.items() if v}


def test_unmarked_instance_methods_we_call_keep_their_parameters() -> None:
    """DagsterInstance methods without @public: an upgrade that renames one or its parameters
    fails here, not in an operator's health check."""
    for name, (params, why) in dagster_internals.INSTANCE_METHODS.items():
        method = getattr(dg.DagsterInstance, name, None)
        assert method is not None and why, name
        signature = list(inspect.signature(method).parameters)[1:]
        assert signature[: len(params)] == list(params), (name, signature)
