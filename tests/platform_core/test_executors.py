"""Where steps run: locally unless a Celery broker is set; the URLs are read from the
environment when a run resolves its executor, not frozen into the definitions
(tests/production/test_celery.py runs real workers)."""

import dagster as dg
import pytest

from platform_core.executors import BACKEND_ENV, BROKER_ENV, step_executor


def test_steps_stay_local_without_a_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BROKER_ENV, raising=False)
    assert step_executor(dg.in_process_executor) is dg.in_process_executor
    assert step_executor(dg.multiprocess_executor) is dg.multiprocess_executor


@pytest.mark.parametrize("backend", [None, "redis://127.0.0.1:6379/1"])
def test_a_broker_sends_steps_to_celery_read_at_run_time(
    monkeypatch: pytest.MonkeyPatch, backend: str | None
) -> None:
    monkeypatch.setenv(BROKER_ENV, "pyamqp://user:s3cret@127.0.0.1:5672//")
    if backend:
        monkeypatch.setenv(BACKEND_ENV, backend)
    else:
        monkeypatch.delenv(BACKEND_ENV, raising=False)
    executor = step_executor(dg.in_process_executor)
    assert executor.name == "celery"
    config = executor.apply_config_mapping({}).value["config"]
    assert config["broker"] == "pyamqp://user:s3cret@127.0.0.1:5672//"
    assert config["backend"] == (backend or "rpc://")
    monkeypatch.setenv(BROKER_ENV, "redis://127.0.0.1:6379/2")  # e.g. a rotated secret
    assert executor.apply_config_mapping({}).value["config"]["broker"].startswith("redis://")
