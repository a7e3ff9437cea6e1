"""The storage owner: one resource owns every path under the data root.

Every location binds a ``DataStore`` (resource key ``storage``); its IO manager, its assets'
side files, its sensors' inboxes, its input registries and its CLIs all ask it for paths, and
nothing else builds one. So setting the root (``PLATFORM_DATA_ROOT``, read as a ``dg.EnvVar``)
moves all of a location's data, and an object-store implementation replaces this one class
(docs/architecture.md says what it would change).

Layout under the root::

    <root>/<location>/<asset>/<partition>.<ext>    asset values (the IO manager)
    <root>/<location>/<asset>/<partition>.<name>   side files of a value (arrays, OME-Zarr)
    <root>/<location>/inbox/                       what the inbox sensor watches
    <root>/<location>/<area>/...                   inputs, registries, libraries, steps
    <root>/alerts.log                              the alert log
    <root>/.scratch/                               work folders of tools that need paths
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg

from platform_core.confine import ConfinementError, confine, in_user_process, input_roots
from platform_core.keys import validate_partition_key

DATA_ROOT_ENV = "PLATFORM_DATA_ROOT"
DEFAULT_DATA_ROOT = ".data"
UNPARTITIONED = "__all__"
INBOX = "inbox"


def operator_root() -> Path:
    """The data root the operator set (``$PLATFORM_DATA_ROOT``, else ``./.data``), resolved."""
    return Path(os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT).resolve()


class ConfinedPaths:
    """A resource whose fields a UI user may set in a run's config. In a run that a daemon
    launched (not one in the user's own process), each of ``confined_fields`` (paths) that
    the run's config sets must resolve inside the input roots (the data root and
    ``PLATFORM_INPUT_ROOTS``), and ``operator_fields`` (programs to execute, where the data
    lives) may not be set there at all; the environment's values are the operator's."""

    confined_fields: ClassVar[tuple[str, ...]] = ()
    operator_fields: ClassVar[tuple[str, ...]] = ()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.dagster_run
        if run is None or in_user_process():
            return
        entries: dict[str, Any] = (run.run_config or {}).get("resources") or {}
        set_here = {
            field
            for entry in entries.values()
            if isinstance(entry, dict) and isinstance(entry.get("config"), dict)
            for field in entry["config"]
        }
        for field in (f for f in self.operator_fields if f in set_here):
            raise ConfinementError(
                f"run config {field}: the operator's setting (the environment or the location "
                "where the daemon runs, e.g. which program a run executes); a UI run may not "
                "set it"
            )
        for field in self.confined_fields:
            value = getattr(self, field)
            if field in set_here and value:
                confine(str(value), input_roots(operator_root()), f"run config {field}")


class DataStore(ConfinedPaths, dg.ConfigurableResource):
    """Every path of one location's data (``location``) under ``root`` (relative: to the
    working directory of the process; unset: ``$PLATFORM_DATA_ROOT`` where the store is used,
    else ``./.data``)."""

    root: str | None = None
    location: str
    operator_fields: ClassVar[tuple[str, ...]] = ("root", "location")  # never a UI run's

    @classmethod
    def from_env(cls, location: str) -> "DataStore":
        """The store of ``location`` at ``$PLATFORM_DATA_ROOT``: bound as a ``dg.EnvVar`` when
        set (read where the run, sensor or command runs; the UI shows only its name)."""
        if os.environ.get(DATA_ROOT_ENV):
            return cls(root=dg.EnvVar(DATA_ROOT_ENV), location=location)
        return cls(location=location)

    def base(self) -> Path:
        """The data root of every location."""
        return Path(self.root).resolve() if self.root else operator_root()

    def home(self) -> Path:
        """The location's folder."""
        return self.base() / validate_partition_key(self.location)

    def asset_dir(self, asset_key: dg.AssetKey) -> Path:
        return self.home().joinpath(*asset_key.path)

    def value_path(self, asset_key: dg.AssetKey, partition: str | None, suffix: str) -> Path:
        """``<asset dir>/<partition>.<suffix>``: an asset value (``suffix`` its format) or a
        side file kept beside it (``"<name>.npy"``, ``"ome.zarr"``)."""
        return self.asset_dir(asset_key) / self.value_name(partition, suffix)

    @staticmethod
    def value_name(partition: str | None, suffix: str) -> str:
        """The file name of a partition's value in its asset's folder: the key (checked to be
        a safe path component), or ``__all__`` for an unpartitioned asset."""
        return f"{validate_partition_key(partition) if partition else UNPARTITIONED}.{suffix}"

    def area(self, *parts: str) -> Path:
        """A folder of the location that is not an asset's (``"inputs", batch``), each part
        checked to be a safe path component."""
        return self.home().joinpath(*(validate_partition_key(part) for part in parts))

    def inbox(self) -> Path:
        """The folder the location's inbox sensor watches."""
        return self.home() / INBOX

    def resolve(self, path: str) -> Path:
        """A folder a workflow's config names: absolute as given, relative to the location's
        folder."""
        given = Path(path).expanduser()
        return given if given.is_absolute() else self.home() / given

    def alert_log(self) -> Path:
        return self.base() / "alerts.log"

    @contextmanager
    def scratch(self, prefix: str) -> Iterator[Path]:
        """A work folder under the root for a tool that needs POSIX paths; removed after."""
        parent = self.base() / ".scratch"
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-", dir=parent) as folder:
            yield Path(folder)
