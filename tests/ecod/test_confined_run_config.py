"""Run config that reads or writes files (the UI lets anyone who reaches it set it): in a run
a daemon launched, the release files must lie inside the input roots and the data root is the
operator's; in the user's own process (the CLI, the API) the user's paths are read."""

from pathlib import Path

import dagster as dg
import pytest

from ecod_assets.definitions import defs
from platform_core.confine import user_process
from tests.support import failure_messages, outside_untouched, store, tick

pytestmark = pytest.mark.usefixtures("instance")


def materialize_library(resources: dict) -> str:
    """Materialize reference_library with ``resources`` run config; the failure's message."""
    library = defs.resolve_assets_def("reference_library")
    result = dg.materialize(
        [library],
        run_config={"resources": resources},
        raise_on_error=False,
        instance=dg.DagsterInstance.get(),
    )
    assert not result.success
    return "\n".join(failure_messages(result))


def test_release_paths_from_the_ui_stay_inside_the_input_roots(tmp_path: Path) -> None:
    with outside_untouched(tmp_path) as outside:
        secret = str(outside / "secret.txt")
        release = {"release": {"config": {"domains_path": secret, "fasta_path": secret}}}
        error = materialize_library(release)
        assert (
            f"run config domains_path '{secret}'" in error and "outside the allowed roots" in error
        )
        with user_process():  # the same paths in the user's own process: read (and refused as
            error = materialize_library(release)  # not a release file, for another reason)
        assert "outside the allowed roots" not in error and "secret.txt" in error


def test_a_ui_run_cannot_move_the_data_root(tmp_path: Path) -> None:
    with outside_untouched(tmp_path) as outside:
        escape = f"../../../../../../..{outside}"  # the location's folder is under the root
        for config in ({"root": str(outside), "location": "ecod"}, {"location": escape}):
            error = materialize_library({"storage": {"config": config}})
            field = next(iter(config))
            assert f"run config {field}: the operator's setting" in error


def test_a_dropped_link_never_brings_an_outside_file_in(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """A FASTA that is a link, or a truth table beside a FASTA that is one: rejected with the
    reason, and the outside file's bytes are neither copied nor quoted."""
    inbox = store("ecod").inbox()
    inbox.mkdir(parents=True)
    with outside_untouched(tmp_path) as outside:
        secret = outside / "secret.txt"
        (inbox / "linked.fasta").symlink_to(secret)
        (inbox / "truthful.fasta").write_text(f">q1\n{'MKTAYIAKQRQISFVKSHFSRQLEERLG' * 2}\n")
        (inbox / "truthful.truth.tsv").symlink_to(secret)
        for name in ("linked.fasta", "truthful.fasta"):
            (inbox / f"{name}.complete").touch()
        result = tick(defs, "ecod_inbox_sensor", instance)
    assert not result.run_requests and not result.dynamic_partitions_requests
    rejected = inbox / "rejected"
    linked = (rejected / "linked.fasta.error.txt").read_text()
    assert "is a symbolic link" in linked and "never links" in linked
    truthful = (rejected / "truthful.fasta.error.txt").read_text()
    assert "truthful.truth.tsv" in truthful and "outside the allowed roots" in truthful
    copied = [p for p in store("ecod").home().rglob("*") if p.is_file() and not p.is_symlink()]
    assert all(b"not for the daemon" not in p.read_bytes() for p in copied)


def test_a_ui_run_cannot_choose_the_programs_it_executes(tmp_path: Path) -> None:
    with outside_untouched(tmp_path) as outside:
        evil = outside / "evil.sh"
        evil.write_text(f"#!/bin/sh\ntouch {outside}/ran\n")
        evil.chmod(0o755)
        error = materialize_library({"ecod_tools": {"config": {"makeblastdb": str(evil)}}})
        assert "run config makeblastdb: the operator's setting" in error
        assert not (outside / "ran").exists()
        evil.unlink()  # (the helper's folder must be as it was)
