"""The location's release and its library: built once however many runs want it at the same
time, found again without rereading the release, and a configured release is never replaced
by the demo one."""

import threading
from pathlib import Path

import pytest

from ecod_assets.defs.assets.reference import record_release, release_files, release_library
from ecod_assets.demo import write_demo_library
from ecod_assets.resources import EcodTools, OrchestrationConfig, ReferenceRelease
from platform_core.datastore import DataStore

pytestmark = pytest.mark.slow  # builds libraries with the real tools


def test_two_runs_at_once_build_the_library_once(tmp_path: Path) -> None:
    store = DataStore(root=str(tmp_path / "data"), location="ecod")
    settings = OrchestrationConfig(workers=1)
    results: list[tuple[dict, float]] = []

    def want_it() -> None:  # what each batch run's first tool step does
        results.append(release_library(ReferenceRelease(), store, EcodTools(), settings))

    threads = [threading.Thread(target=want_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (first, cpu_a), (second, cpu_b) = results
    assert first == second and first["source"] == "demo"
    assert sorted([cpu_a > 0, cpu_b > 0]) == [False, True]  # one built, the other found it
    folders = store.area("reference").iterdir()
    built = [p.name for p in folders if p.is_dir() and p.name not in ("demo-source", "releases")]
    assert built == [first["fingerprint"]] and Path(first["root"], "complete").exists()
    again, cpu = release_library(ReferenceRelease(), store, EcodTools(), settings)
    assert again == first and cpu == 0.0


def test_a_configured_release_wins_and_the_demo_is_never_written(tmp_path: Path) -> None:
    store = DataStore(root=str(tmp_path / "data"), location="ecod")
    mine = write_demo_library(tmp_path / "mine", tier="remote")
    recorded = write_demo_library(tmp_path / "recorded")
    record_release(store, (recorded.domains_path, recorded.fasta_path))
    configured = ReferenceRelease(
        domains_path=str(mine.domains_path), fasta_path=str(mine.fasta_path)
    )
    files = release_files(configured, store)  # the environment's release over the recorded
    assert (files.source, files.domains) == ("configured", mine.domains_path)
    assert release_files(ReferenceRelease(), store).source == "recorded"
    library, cpu = release_library(configured, store, EcodTools(), OrchestrationConfig())
    assert cpu > 0 and library["source"] == "configured" and library["families"] == 48
    assert not store.area("reference", "demo-source").exists()
    record_release(store, None)  # `ecod reference` without files: back to the demo release
    assert release_files(ReferenceRelease(), store).source == "demo"
