"""Health checks over real runs, a real loopback web server and the real disk; the health
sensor's check evaluations recorded in the instance as the daemon records them."""

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from platform_core import health
from platform_core.platform_cli import print_health
from platform_core.platform_config import LoadedConfig
from platform_core.platform_models import HealthConfig, PlatformConfig
from platform_core.runstats import RunHistory

LOCATION = "tiny"
RELAXED = HealthConfig(max_memory_used_fraction=1.0)  # a busy test box is not the subject


class Fail(dg.Config):
    fail: bool = False


@dg.asset(group_name="prices")
def prices() -> int:
    return 1


@dg.asset(group_name="report")
def report(config: Fail) -> int:
    if config.fail:
        raise dg.Failure("the report could not be built")
    return 2


DEFS = dg.Definitions(
    assets=[prices, report],
    jobs=[dg.define_asset_job(f"{a.key.path[-1]}_job", selection=[a]) for a in (prices, report)],
)


def loaded(**health_fields: object) -> LoadedConfig:
    model = PlatformConfig(health=RELAXED.model_copy(update=health_fields))
    return LoadedConfig(model, None, "defaults")


def run(instance: dg.DagsterInstance, job: str, **config: object) -> None:
    """A real run of one of the location's jobs (as its CLI or the daemon starts it)."""
    run_config = {"ops": {"report": {"config": config}}} if config else {}
    DEFS.resolve_job_def(job).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )


def run_report(instance: dg.DagsterInstance, fail: bool) -> None:
    run(instance, "report_job", fail=fail)


@pytest.fixture
def server_info() -> Iterator[str]:
    """A loopback HTTP server answering /server_info as Dagster's web server does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/server_info"
            body = json.dumps({"dagster_version": dg.__version__}).encode()
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(body if found else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_pipelines_and_exit_code_follow_real_runs(
    instance: dg.DagsterInstance, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(instance, "prices_job")
    run_report(instance, fail=True)
    found = health.location_health(instance, DEFS, LOCATION, loaded())
    assert set(found["system"]) == set(health.SYSTEM_CHECKS)
    assert found["system"]["database"]["status"] == "ok"
    assert found["system"]["daemon_heartbeat"]["status"] == "warn"  # no daemon; not required
    good, bad = found["pipelines"]["prices"], found["pipelines"]["report"]
    assert good["status"] == "SUCCESS" and good["healthy"] and good["error_rate"] == 0.0
    assert good["data_freshness"] == "fresh" and good["avg_duration_s"] > 0
    assert bad["status"] == "FAILURE" and not bad["healthy"] and bad["error_rate"] == 1.0
    assert bad["problems"] == [f"last run {bad['last_run']} failed"]
    assert not found["healthy"]
    assert print_health(found, as_json=True) == 1
    printed = json.loads(capsys.readouterr().out)
    fields = {"last_run", "status", "data_freshness", "error_rate", "avg_duration_s"}
    assert fields <= set(printed["pipelines"]["report"])
    run_report(instance, fail=False)  # the next run succeeds: healthy again
    found = health.location_health(instance, DEFS, LOCATION, loaded())
    assert found["healthy"] and found["pipelines"]["report"]["error_rate"] == 0.5
    assert print_health(found, as_json=False) == 0
    assert "healthy at" in capsys.readouterr().out


def test_stale_data_and_error_rate_rule_make_a_pipeline_unhealthy(
    instance: dg.DagsterInstance, data_root: Path
) -> None:
    run(instance, "prices_job")
    run_report(instance, fail=True)
    run_report(instance, fail=False)
    stale = {"tiny": {"pipelines": {"prices": {"max_data_age_hours": 1e-9}}}}

    def config(min_runs: int) -> LoadedConfig:
        rule = {"name": "errors", "condition": "error_rate > 0.4", "severity": "high"}
        rules = {
            "channels": {"log": {}},
            "rules": [{**rule, "channels": ["log"], "min_runs": min_runs}],
        }
        model = PlatformConfig.model_validate(
            {"alerting": rules, "locations": stale, "health": RELAXED.model_dump()}
        )
        return LoadedConfig(model, None, "defaults")

    cfg = config(min_runs=2)
    history = RunHistory(instance, DEFS, LOCATION)
    found = health.pipeline_health(history, "report", cfg)
    assert found["status"] == "SUCCESS" and found["problems"] == ["error rate 0.50 > 0.4"]
    assert not found["healthy"]
    too_few = health.pipeline_health(history, "report", config(min_runs=3))
    assert too_few["healthy"], "two runs are fewer than the rule's min_runs"
    found = health.pipeline_health(history, "prices", cfg)
    assert found["status"] == "SUCCESS" and found["data_freshness"] == "stale"
    assert found["problems"] == [f"data stale ({found['data_age_hours']} h old)"]
    assert health.pipeline_health(history, "prices", loaded())["healthy"]


def test_webserver_check_against_a_loopback_server_then_a_closed_port(
    instance: dg.DagsterInstance, data_root: Path, server_info: str
) -> None:
    required = RELAXED.model_copy(update={"webserver_url": server_info, "require": ["webserver"]})
    checks = health.system_health(instance, required, data_root)
    assert checks["webserver"]["status"] == "ok"
    assert checks["webserver"]["value"] == dg.__version__
    closed = required.model_copy(update={"webserver_url": "http://127.0.0.1:9"})  # discard port
    assert health.system_health(instance, closed, data_root)["webserver"]["status"] == "fail"
    optional = closed.model_copy(update={"require": ["database"]})
    assert health.system_health(instance, optional, data_root)["webserver"]["status"] == "warn"


def test_a_disk_threshold_above_the_free_space_is_unhealthy(
    instance: dg.DagsterInstance, data_root: Path
) -> None:
    free_gb = shutil.disk_usage(instance.root_directory).free / 1e9
    found = health.location_health(instance, DEFS, LOCATION, loaded(min_free_disk_gb=free_gb * 2))
    assert found["system"]["disk_space"]["status"] == "fail"
    assert str(free_gb * 2) in found["system"]["disk_space"]["detail"]
    assert not found["healthy"]


def test_the_sensor_records_its_checks_in_the_instance(
    instance: dg.DagsterInstance, data_root: Path
) -> None:
    run_report(instance, fail=True)
    defs = dg.Definitions.merge(DEFS, health.health_definitions(LOCATION, DEFS, loaded()))
    sensor = defs.resolve_sensor_def(f"{LOCATION}_health")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with dg.build_sensor_context(instance=instance) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    for event in result.asset_events:  # what the daemon does with a tick's events
        instance.report_runless_asset_event(event)
    asset = dg.AssetKey([LOCATION, "platform_health"])
    storage = instance.event_log_storage

    def latest(name: str) -> dg.AssetCheckEvaluation:
        records = storage.get_asset_check_execution_history(dg.AssetCheckKey(asset, name), 1)
        assert records, name
        return records[0].evaluation

    assert latest("database").passed
    assert not latest("pipeline_report").passed
    assert "failed" in (latest("pipeline_report").description or "")
    assert latest("pipeline_prices").passed  # never run: not a problem
    assert not latest("daemon_heartbeat").passed
    assert latest("daemon_heartbeat").severity == dg.AssetCheckSeverity.WARN
    graph_checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {event.check_name for event in result.asset_events} == graph_checks


def test_the_checks_run_as_a_job(instance: dg.DagsterInstance, data_root: Path) -> None:
    """The UI runs the checks of the health asset as a job of its own."""
    checks = health.health_definitions(LOCATION, DEFS, loaded())
    job = dg.define_asset_job(
        "health",
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey([LOCATION, "platform_health"])),
    )
    defs = dg.Definitions.merge(DEFS, checks, dg.Definitions(jobs=[job]))
    result = defs.resolve_job_def("health").execute_in_process(instance=instance)
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations["database"] and evaluations["pipeline_report"]
    assert set(evaluations) >= {*health.SYSTEM_CHECKS, "pipeline_prices", "pipeline_report"}
