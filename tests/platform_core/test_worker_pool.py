"""Side-by-side runs reuse warm worker processes, but never with a stale environment."""

import os
from pathlib import Path

import pytest

from platform_core.pool import process_pool


def test_worker_pool_is_kept_only_while_environment_and_directory_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = process_pool(1)
    pid = first.submit(os.getpid).result()
    assert process_pool(1) is first
    assert first.submit(os.getpid).result() == pid  # the same warm process, no new spawn

    monkeypatch.setenv("PLATFORM_DATA_ROOT", str(tmp_path))
    second = process_pool(1)
    assert second is not first
    assert second.submit(os.getenv, "PLATFORM_DATA_ROOT").result() == str(tmp_path)
    with pytest.raises(RuntimeError, match="shutdown"):
        first.submit(os.getpid)  # the stale pool is gone

    monkeypatch.chdir(tmp_path)
    third = process_pool(1)
    assert third is not second
    assert third.submit(os.getcwd).result() == str(tmp_path)
