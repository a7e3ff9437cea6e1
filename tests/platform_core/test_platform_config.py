"""The platform config file: refusals naming file and line, the layers, the seed example."""

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pydantic import Field

from ecod_assets.resources import OrchestrationConfig
from platform_core import platform_config as pc
from platform_core.settings import resource_from_layers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform.yaml"
ECOD_GROUPS = ["ecod_pipeline"]  # a stand-in: these tests check the flat keys


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(pc.ConfigError) as caught:
        pc.load(path)
    return str(caught.value)


CHANNELS = """alerting:
  channels:
    email:
      recipients: [ops@example.com]
    slack:
      webhook_url: "${SLACK_URL}"
"""


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("health:\n  interval_seconds: 60\nalrting: {}\n", "line 3", "alrting: unknown key"),
        (
            CHANNELS + '  rules:\n    - name: r\n      condition: "cpu > 3"\n'
            "      severity: high\n      channels: [email]\n",
            "line 9",
            "unknown condition 'cpu > 3'",
        ),
        (
            CHANNELS + '  rules:\n    - name: r\n      condition: "error_rate > lots"\n'
            "      severity: high\n      channels: [email]\n",
            "line 9",
            "threshold 'lots' is not a number",
        ),
        (
            CHANNELS + "  rules:\n    - name: r\n      condition: check_failed\n"
            "      severity: high\n      channels: [email, pager]\n",
            "line 11",
            "alerting.rules.0.channels.1: channel 'pager' is not configured",
        ),
        (
            "alerting:\n  channels:\n    slack:\n      channel: '#ops'\n"
            "      webhook_url: https://hooks.example.com/T000/SECRET\n",
            "line 5",
            "alerting.channels.slack.webhook_url: a secret is given only as",
        ),
        (
            "alerting:\n  channels:\n    email:\n      smtp_server: mail\n      port: many\n",
            "line 5",
            "alerting.channels.email.port: Input should be a valid integer",
        ),
        ("steps:\n  modules: []\ndata_root: /srv/data\n", "line 3", "data_root: not in"),
        (
            "locations:\n  ecod:\n    storage: /srv\n",
            "line 3",
            "locations.ecod.storage: not in",
        ),
        ("locations:\n  nowhere: {}\n", "line 2", "locations.nowhere: no such code location"),
        (
            "locations:\n  tetra:\n    pipelines:\n      data:\n        failure_actions:\n"
            "          - retry_count: 3\n          - fallback: use_yesterday\n",
            "line 7",
            "pipelines.data.failure_actions.1.fallback: Input should be 'use_cached",
        ),
        ("a: &x [1]\nb: *x\n", "line 2", "a YAML alias (*x)"),
    ],
)
def test_bad_file_is_refused_naming_file_line_and_key(
    tmp_path: Path, text: str, where: str, says: str
) -> None:
    path = write(tmp_path, text)
    message = refusal(path)
    assert f"{path} {where}: " in message
    assert says in message


@pytest.mark.parametrize(
    ("section", "where", "says"),
    [
        ("hhsearch_memroy: 16G", "line 3", "locations.ecod.hhsearch_memroy: unknown key"),
        ("blast_batch_size: many", "line 3", "locations.ecod.blast_batch_size: Input should be"),
        ("hhsearch_memory: lots", "line 3", "locations.ecod.hhsearch_memory: Value error"),
        ("inbox_settle_seconds: -1", "line 3", "inbox_settle_seconds: Input should be greater"),
        ("pipelines: {nope: {}}", "line 3", "locations.ecod.pipelines.nope: no such pipeline"),
        (
            "pipelines: {ecod_pipeline: {failure_actions: [notify: [pager]]}}",
            "line 3",
            "notify.0: channel 'pager' is not configured",
        ),
        (
            "pipelines: {ecod_pipeline: {failure_actions: [retry_count: 3]}}",
            "line 3",
            "failure_actions.retry_count: ecod does not act on it",
        ),
    ],
)
def test_location_section_is_checked_against_the_settings(
    tmp_path: Path, section: str, where: str, says: str
) -> None:
    path = write(tmp_path, f"locations:\n  ecod:\n    {section}\n")
    with pytest.raises(pc.ConfigError) as caught:
        pc.validate_location(pc.load(path), "ecod", [OrchestrationConfig], ECOD_GROUPS)
    assert f"{path} {where}: " in str(caught.value) and says in str(caught.value)


def test_the_seed_example_loads() -> None:
    loaded = pc.load(EXAMPLE)
    alerting = loaded.model.alerting
    assert alerting is not None
    assert alerting.channels["slack"].url_env == "SLACK_WEBHOOK_URL"
    assert alerting.channels["email"].host == "smtp.gmail.com"
    assert alerting.channels["pagerduty"].routing_key_env == "PAGERDUTY_API_KEY"
    assert [(r.condition.kind, r.condition.threshold) for r in alerting.rules] == [
        ("run_failed", None),
        ("data_age_hours", 72.0),
        ("error_rate", 0.1),
        ("duration_minutes", 120.0),
    ]
    data = loaded.pipeline("tetra", "data")
    assert (data.failure_actions.retry_count, data.failure_actions.fallback) == (
        3,
        "use_cached_data",
    )
    assert loaded.pipeline("tetra", "assessment").failure_actions.checkpoint_recovery
    pc.validate_location(loaded, "ecod", [OrchestrationConfig], ECOD_GROUPS)
    record = loaded.record("ecod")
    assert record["digest"] == loaded.digest and record["settings"]["blast_batch_size"] == 50
    assert "ops@tetra.com" not in json.dumps(loaded.record("tetra"))  # alerting stays out


def test_use_file_sets_the_environment() -> None:
    assert pc.config_path() is None
    pc.use_file(EXAMPLE)
    assert pc.config_path() == EXAMPLE
    assert pc.load().pipeline("tetra", "data").failure_actions.retry_count == 3


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, "inbox_interval_seconds: 30\n")
    assert pc.load(path).model.inbox_interval_seconds == 30
    path.write_text("inbox_interval_seconds: 120\n")
    assert pc.load(path).model.inbox_interval_seconds == 120


class Tiny(dg.ConfigurableResource):
    a: int = 1
    b: int = 1
    c: int = 1
    d: int = 1


def test_layers_defaults_file_env_run_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance
) -> None:
    path = write(tmp_path, "locations:\n  cardio:\n    b: 2\n    c: 2\n    d: 2\n")
    cfg = pc.load(path)
    pc.validate_location(cfg, "cardio", [Tiny], [])
    monkeypatch.setenv("TINY_C", "3")
    monkeypatch.setenv("TINY_D", "3")
    tiny = resource_from_layers(Tiny, {"c": "TINY_C", "d": "TINY_D"}, cfg.section("cardio"))
    seen: dict[str, Any] = {}

    @dg.asset
    def probe(tiny: Tiny) -> None:
        seen.update(tiny.model_dump())

    result = dg.materialize(
        [probe],
        resources={"tiny": tiny},
        instance=instance,
        run_config={"resources": {"tiny": {"config": {"d": 4}}}},
    )
    assert result.success
    assert seen == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_a_location_takes_its_section_under_env_and_run_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_root: Path
) -> None:
    """ECOD's real settings resource: file over defaults, env over file, and a partial run
    config (a CLI flag) over both without dropping them."""
    from ecod_assets.location import LOCATION

    path = write(tmp_path, "locations:\n  ecod:\n    blast_batch_size: 7\n    workers: 3\n")
    monkeypatch.setenv(pc.CONFIG_ENV, str(path))
    monkeypatch.setenv("ECOD_WORKERS", "5")
    resource = LOCATION.definitions().resources["orchestration"]
    seen: dict[str, Any] = {}

    @dg.asset
    def probe(orchestration: OrchestrationConfig) -> None:
        seen.update(orchestration.model_dump())

    config = {"resources": {"orchestration": {"config": {"continue_on_error": True}}}}
    result = dg.materialize([probe], resources={"orchestration": resource}, run_config=config)
    assert result.success
    assert (seen["blast_batch_size"], seen["workers"], seen["continue_on_error"]) == (7, 5, True)
    assert seen["hhsearch_memory"] == OrchestrationConfig.model_fields["hhsearch_memory"].default
    path.write_text("locations:\n  ecod:\n    hhsearch_memroy: 16G\n")
    with pytest.raises(pc.ConfigError, match=rf"{path} line 3: locations.ecod.hhsearch_memroy"):
        LOCATION.definitions()


def test_each_run_records_the_config(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    from platform_core.datastore import DataStore
    from platform_core.io import AssetStorageIOManager

    loaded = pc.use_file(EXAMPLE)  # the run's process reads $PLATFORM_CONFIG
    io = AssetStorageIOManager(store=DataStore(root=str(tmp_path), location="ecod"))

    @dg.asset
    def tiny() -> int:
        return 1

    result = dg.materialize([tiny], resources={"io_manager": io}, instance=instance)
    run = instance.get_run_by_id(result.run_id)
    assert run.tags[pc.RUN_TAG_DIGEST] == loaded.digest
    assert run.tags[pc.RUN_TAG_FILE] == str(EXAMPLE)
    lines = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]
    recorded = [m for m in lines if m.startswith(f"platform config {loaded.digest} from")]
    assert len(recorded) == 1 and '"blast_batch_size": 50' in recorded[0]
    assert "ops@tetra.com" not in recorded[0] and "sms-gateway" not in recorded[0]


def test_step_modules_from_the_file_and_the_env_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platform_core.steps import STEP_MODULES_ENV, registered_step_modules

    monkeypatch.delenv(STEP_MODULES_ENV, raising=False)
    monkeypatch.setenv(pc.CONFIG_ENV, str(write(tmp_path, "steps:\n  modules: [mylab]\n")))
    assert registered_step_modules() == ("mylab",)
    monkeypatch.setenv(STEP_MODULES_ENV, "otherlab,third")
    assert registered_step_modules() == ("otherlab", "third")


class Limits(dg.ConfigurableResource):
    seconds: float = Field(1.0, ge=0)


@pytest.mark.parametrize(("value", "says"), [("soon", "valid number"), ("-2", "greater than")])
def test_a_bad_environment_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("TEST_LIMIT_SECONDS", value)
    with pytest.raises(pc.ConfigError, match=rf"\$TEST_LIMIT_SECONDS='{value}': seconds: .*{says}"):
        resource_from_layers(Limits, {"seconds": "TEST_LIMIT_SECONDS"}, {})


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "health:\n  min_free_disk_gb: 5\n  min_free_disk_gb: 50\n")
    assert f"{path} line 3: 'min_free_disk_gb' is given twice" in refusal(path)
