"""Input registries: what each partition of a location reads, recorded once.

Every location registers its inputs the same way, from the CLI's ``submit`` / ``run`` and
from its inbox sensor alike: a JSON record per name under the storage owner's
``<location>/<area>/<name>.json``. Registering the same record again is a no-op; a different
record under a taken name is refused, so a partition always means the same input (a key is
never repointed). A record says where the input is (a plate or study folder read where it
lies), what was copied in (a batch FASTA's digest), or what to run (an omics run's config).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from platform_core.confine import (
    ConfinementError,
    InputFolder,
    confine,
    is_inside,
    links_leaving,
)
from platform_core.datastore import DataStore
from platform_core.inbox import Inbox
from platform_core.io import write_json
from platform_core.keys import InvalidKeyError, validate_partition_key
from platform_core.steps import StepNotAllowedError, refuse_dropped_steps


class RegisteredElsewhereError(ValueError):
    """A name is registered for a different input."""


@dataclass(frozen=True)
class InputRegistry:
    """One kind of input of a location: ``area`` (its folder under the location's),
    ``kind`` (a word for users: "plate", "batch") and ``command`` (how a user registers one,
    quoted in errors)."""

    area: tuple[str, ...]
    kind: str
    command: str

    def entry(self, store: DataStore, name: str) -> Path:
        return store.area(*self.area) / f"{validate_partition_key(name)}.json"

    def register(
        self,
        store: DataStore,
        name: str,
        record: dict[str, Any],
        conflict: Callable[[dict[str, Any]], str],
    ) -> str:
        """Record ``name`` -> ``record`` once; ``conflict(known record)`` says what is wrong
        when ``name`` is taken by another record (RegisteredElsewhereError)."""
        entry = self.entry(store, name)
        if entry.exists():
            known = json.loads(entry.read_text())
            if known != json.loads(json.dumps(record, default=str)):
                raise RegisteredElsewhereError(conflict(known))
            return name
        write_json(entry, record)
        return name

    def record(self, store: DataStore, name: str) -> dict[str, Any]:
        """What ``name`` was registered with; FileNotFoundError naming the command if never."""
        entry = self.entry(store, name)
        if not entry.exists():
            raise FileNotFoundError(
                f"{self.kind} {name!r} is not registered (run `{self.command}`)"
            )
        return json.loads(entry.read_text())

    def names(self, store: DataStore) -> list[str]:
        folder = store.area(*self.area)
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


MAX_YAML_BYTES = 1_000_000  # a YAML in a dropped folder larger than this is refused


@dataclass(frozen=True)
class FolderInputs:
    """Input folders read where they lie (plates, studies): the partition key is the folder's
    name unless given; the record is the folder's absolute path and, for a folder that came
    through the inbox, ``confined``."""

    registry: InputRegistry

    def register(
        self, store: DataStore, folder: Path, key: str | None = None, confined: bool = False
    ) -> str:
        source = folder if confined else folder.resolve()  # confined: resolved when checked
        if not source.is_dir():
            raise FileNotFoundError(f"{folder}: no such {self.registry.kind} folder")
        key, kind = validate_partition_key(key or folder.name), self.registry.kind
        entry = self.registry.entry(store, key)
        if entry.exists() and json.loads(entry.read_text()).get("source") == str(source):
            return key  # registered before (the first registration says if it is confined)
        return self.registry.register(
            store,
            key,
            {"source": str(source), "confined": confined},
            lambda known: (
                f"{kind} {key!r} is already registered for {known['source']}; rename "
                f"the folder or pass another {kind} name (registered {kind}s are never repointed)"
            ),
        )

    def folder(self, store: DataStore, key: str) -> InputFolder:
        """The folder a registered key reads from, and whether it is confined: registered from
        the inbox, or lying in it (whoever registered it, and records older than the flag)."""
        record = self.registry.record(store, key)
        source = Path(record["source"])
        in_inbox = is_inside(source, [store.inbox().resolve()])
        if record.get("confined") and not in_inbox:
            raise ConfinementError(f"{self.registry.kind} {key}: confined, yet not in the inbox")
        return InputFolder(source, in_inbox)

    def register_dropped(self, store: DataStore, folder: Path) -> str:
        """Register a folder from the inbox, confined: refused if it is not a real folder in
        the inbox, holds a link leading out of it, or holds a YAML file declaring steps."""
        folder = confine(folder, [store.inbox().resolve()], f"{self.registry.kind} folder")
        leaving = links_leaving(folder)
        if leaving:
            link, target = leaving[0]
            raise ConfinementError(
                f"{link}: a symbolic link to {target}, outside the {self.registry.kind} folder "
                f"({len(leaving)} such link(s)); a dropped folder is read only inside itself"
            )
        for file in sorted((*folder.rglob("*.yaml"), *folder.rglob("*.yml"))):
            if not file.is_file():  # a pipe named *.yaml is never read (nor waited on)
                continue
            if file.stat().st_size > MAX_YAML_BYTES:
                raise StepNotAllowedError(f"{file}: over 1 MB; not a pipeline or metadata YAML")
            try:
                document = yaml.safe_load(file.read_text())
            except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
                raise StepNotAllowedError(f"{file}: not valid YAML ({error})") from None
            refuse_dropped_steps(document, file)
        return self.register(store, folder, confined=True)

    def inbox(self, sensor: str, after: Literal["keep", "adopt"], description: str) -> Inbox:
        """An inbox of these folders (a folder that cannot be registered is refused)."""
        refused = (InvalidKeyError, RegisteredElsewhereError, StepNotAllowedError, OSError)
        return Inbox(
            sensor, self.register_dropped, refused, "folder", after=after, description=description
        )
