"""Helpers shared by the tests of every location."""

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from platform_core.datastore import DATA_ROOT_ENV, DataStore


@contextmanager
def isolated_home(root: Path, **env: str) -> Iterator[Path]:
    """``$DAGSTER_HOME`` (root/home) and ``$PLATFORM_DATA_ROOT`` (root/data) under ``root``,
    plus ``env``, for the duration of the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "home"))
        patch.setenv("PLATFORM_DATA_ROOT", str(root / "data"))
        for name, value in env.items():
            patch.setenv(name, value)
        yield root


def latest_metadata(inst: dg.DagsterInstance, asset: str, partition: str) -> dict:
    """The metadata of the latest materialization of one asset partition."""
    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"{asset} has no materialization for {partition}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def store(location: str) -> DataStore:
    """The storage owner of ``location`` at this test's data root (``$PLATFORM_DATA_ROOT``)."""
    return DataStore(root=os.environ[DATA_ROOT_ENV], location=location)


def data_root() -> Path:
    """This test's data root."""
    return Path(os.environ[DATA_ROOT_ENV]).resolve()


def tick(
    defs: dg.Definitions, sensor: str, instance: dg.DagsterInstance, cursor: str | None = None
) -> dg.SensorResult:
    """One evaluation of a location's sensor, with the storage owner its Definitions bind at
    this test's data root."""
    location = defs.resources["storage"].location
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"storage": store(location)}
    ) as context:
        return defs.resolve_sensor_def(sensor)(context)


def last_partition_run(
    inst: dg.DagsterInstance, key: str, job_names: Iterable[str]
) -> dg.RunRecord | None:
    """The latest run of one of ``job_names`` on partition ``key``."""
    records = [
        record
        for name in job_names
        for record in inst.get_run_records(
            dg.RunsFilter(job_name=name, tags={"dagster/partition": key}), limit=1
        )
    ]
    return max(records, key=lambda r: r.create_timestamp, default=None)


def command(env: Mapping[str, str], *argv: str, cwd: Path | None = None) -> str:
    """A location's command (``ecod run ...``) in a subprocess with exactly ``env``, as a user
    runs it; it must succeed. Its stdout."""
    module = {"hcs": "imaging_assets.cli"}.get(argv[0], f"{argv[0]}_assets.cli")
    done = subprocess.run(
        [sys.executable, "-m", module, *argv[1:]],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, f"{argv}: {done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    return done.stdout


def tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and mtime (ns): equal before and after means
    nothing was written, added or removed there."""
    return {
        str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


@contextmanager
def outside_untouched(tmp_path: Path) -> Iterator[Path]:
    """Sentinels outside the data root for a hostile drop: ``$HOME`` is an empty folder of its
    own and ``<tmp>/outside`` holds ``secret.txt`` and ``sentinel`` (a file a hostile
    function would touch or delete). Yields the outside folder; on leaving, asserts that
    neither folder changed and the sentinel is as it was."""
    home, outside = tmp_path / "home-of-user", tmp_path / "outside"
    home.mkdir(exist_ok=True)
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("not for the daemon\n")
    (outside / "sentinel").write_text("untouched\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        before = tree_state(home), tree_state(outside)
        yield outside
    assert (tree_state(home), tree_state(outside)) == before, "something outside changed"
    assert (outside / "sentinel").read_text() == "untouched\n"


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """Every failure message of a run, causes included (a resource's error is the cause of
    the run's)."""
    messages = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_failure else None
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return messages
