"""What a dropped file may reach: the allowed roots of the paths that untrusted values set,
and files opened inside them without following links.

Who is trusted: the operator (shipped defaults, deployment files, the environment) and a
user in their own process (a CLI run here, the Python API: ``user_process``). Who is not: a
file dropped into an inbox (anyone who can write to a shared folder) and run config sent
from the UI to a daemon-launched run. The paths those set must resolve (``~``, ``..`` and
symbolic links resolved) inside allowed roots:

- where a run writes (a work folder): inside the data root;
- what a run reads: inside the item's own folder, the data root, or a root the operator
  lists in ``PLATFORM_INPUT_ROOTS`` (comma list).

A root is checked when a value is registered and again when its file is opened
(``open_confined``: resolve, open without following links, then check where the open file
really is), since a plate or study is read long after it was registered. No Dagster here.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from platform_core.keys import comma_list

INPUT_ROOTS_ENV = "PLATFORM_INPUT_ROOTS"
USER_PROCESS_ENV = "PLATFORM_USER_PROCESS"
GZIP_MAGIC = b"\x1f\x8b"


class ConfinementError(PermissionError):
    """A path that an untrusted value set lies outside the allowed roots (or became a link)."""


class InputTooLargeError(ValueError):
    """An input (a gzip stream once decompressed) past its location's size limit."""


def operator_input_roots() -> tuple[Path, ...]:
    """The roots the operator allows inputs from (``PLATFORM_INPUT_ROOTS``), resolved."""
    text = os.environ.get(INPUT_ROOTS_ENV, "")
    return tuple(Path(root).expanduser().resolve() for root in comma_list(text))


def input_roots(data_root: Path) -> tuple[Path, ...]:
    """Where an untrusted value may point an input: the data root and the operator's
    ``PLATFORM_INPUT_ROOTS`` (an item's own folder: ``InputFolder``)."""
    return (data_root.resolve(), *operator_input_roots())


def resolved(path: Path, what: str = "path") -> Path:
    """``path`` with ``..`` and every link resolved; ConfinementError for a link loop."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as error:  # a loop: RuntimeError before Python 3.13
        raise ConfinementError(f"{what} {path}: cannot be resolved ({error})") from None


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path`` (resolved) lies in one of ``roots`` (resolved by the caller when they
    are set: an inbox may be a link to a shared mount; an input folder recorded resolved is
    not re-resolved, so a folder swapped for a link is outside itself)."""
    return any(path.is_relative_to(root) for root in roots)


def confine(
    value: str | os.PathLike, roots: Sequence[Path], what: str, base: Path | None = None
) -> Path:
    """``value`` (relative: to ``base``, else the working directory) resolved, if it lies
    inside one of ``roots``; else ConfinementError naming ``what``, the value and the roots."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    target = resolved(path, what)
    if not is_inside(target, roots):
        shown = ", ".join(str(r) for r in roots)
        raise ConfinementError(
            f"{what} {str(value)!r} resolves to {target}, outside the allowed roots ({shown}): "
            f"a dropped file or a UI run may only name paths inside them (the operator may add "
            f"roots in {INPUT_ROOTS_ENV}; the CLI in your own process is not confined)"
        )
    return target


def open_confined(path: str | os.PathLike, roots: Sequence[Path], what: str = "input") -> BinaryIO:
    """``path`` opened for reading if it is a regular file inside ``roots``: resolved and
    checked, opened without following a link (one swapped in after the check fails) and
    without blocking (a pipe swapped in is refused, not waited on), then checked again where
    the open file really is."""
    checked = confine(path, roots, what)
    try:
        fd = os.open(checked, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConfinementError(f"{what} {path}: became a symbolic link; not followed") from None
        raise
    try:
        proc = Path(f"/proc/self/fd/{fd}")
        real = Path(os.readlink(proc)) if proc.is_symlink() else checked
        if not is_inside(real, roots):
            raise ConfinementError(f"{what} {path}: opened as {real}, outside the allowed roots")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfinementError(f"{what} {path}: not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def links_leaving(folder: Path) -> list[tuple[Path, Path]]:
    """(link, where it resolves) for each symbolic link in ``folder`` (the folder itself
    included) that points outside it or nowhere."""
    root = resolved(folder)
    found = [(folder, root)] if folder.is_symlink() else []
    for parent, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            entry = Path(parent) / name
            if entry.is_symlink():
                try:
                    target = resolved(entry)
                except ConfinementError:  # a loop of links
                    found.append((entry, entry))
                    continue
                if not target.exists() or not is_inside(target, [root]):
                    found.append((entry, target))
    return found


def check_gzip_size(path: Path, limit_bytes: float, what: str = "input") -> int | None:
    """The decompressed size of a gzip file, read as a stream (one chunk in memory), or None
    for a file that is not gzip; InputTooLargeError as soon as it passes ``limit_bytes``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a pipe: not waited on
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{what} {path}: not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if handle.read(2) != GZIP_MAGIC:
            return None
        handle.seek(0)
        total = 0
        try:
            with gzip.GzipFile(fileobj=handle) as stream:
                while chunk := stream.read(1 << 20):
                    total += len(chunk)
                    if total > limit_bytes:
                        raise InputTooLargeError(
                            f"{what} {path}: expands past {limit_bytes / 1e6:g} MB when "
                            f"decompressed ({path.stat().st_size / 1e6:.3g} MB compressed); "
                            "refused (raise the location's input limit if it is genuine)"
                        )
        except (OSError, EOFError) as error:
            raise ValueError(f"{what} {path}: not a readable gzip file ({error})") from None
    return total


Opener = Callable[[Path], BinaryIO]  # an input's file -> a binary handle to read it


def open_as_named(file: Path) -> BinaryIO:
    """The file as named, links followed: the user's own files."""
    return Path(file).open("rb")


@dataclass(frozen=True)
class InputFolder:
    """A registered input folder and whether its files are confined to it: a folder from an
    inbox is (a link inside it never reaches out, also one swapped in after registration);
    a folder the user registered from the CLI is read as the user wrote it."""

    path: Path
    confined: bool

    def roots(self) -> tuple[Path, ...] | None:
        return (self.path,) if self.confined else None

    def open(self, file: Path) -> BinaryIO:
        """``file`` (in this folder) for reading; confined: resolved, opened without
        following links and checked to lie inside the folder."""
        roots = self.roots()
        return open_confined(file, roots, "input file") if roots else open_as_named(file)

    def check(self, file: Path) -> Path:
        """``file`` if it may be read (confined: resolves inside the folder), for readers that
        take a path (and open it right after)."""
        roots = self.roots()
        return confine(file, roots, "input file") if roots else Path(file)


AS_NAMED = InputFolder(Path("/"), confined=False)  # files read as named: the user's own


@contextmanager
def user_process() -> Iterator[None]:
    """Runs started inside this block run the user's own code and paths (a CLI run here, the
    Python API): this process and the step processes it starts are not confined."""
    previous = os.environ.get(USER_PROCESS_ENV)
    os.environ[USER_PROCESS_ENV] = str(os.getpid())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(USER_PROCESS_ENV, None)
        else:
            os.environ[USER_PROCESS_ENV] = previous


@contextmanager
def confined_process() -> Iterator[None]:
    """Runs started inside this block are confined even in the user's process: a re-executed
    run carries the run config it was first launched with, which the UI may have set."""
    previous = os.environ.pop(USER_PROCESS_ENV, None)
    try:
        yield
    finally:
        if previous is not None:
            os.environ[USER_PROCESS_ENV] = previous


def in_user_process() -> bool:
    """True inside ``user_process`` (here or in a step process it started); never in a run a
    daemon launched (a leaked variable names another process)."""
    marker = os.environ.get(USER_PROCESS_ENV, "")
    return marker in (str(os.getpid()), str(os.getppid()))
