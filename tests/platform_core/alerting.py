"""Helpers of the alerting tests: a platform config with every channel on loopback
receivers, the alert log, and a ticker of ``<location>_alert_rules`` over real runs."""

import json
import threading
from pathlib import Path

import dagster as dg

from platform_core.alert_sensors import alert_rules_sensor
from platform_core.alerts import effective_alerting, notifier_from_env
from platform_core.datastore import DataStore

SMS_TEMPLATE = '{"to": "{to}", "text": "[{severity}] {subject}", "where": "{location}/{pipeline}"}'


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(body)
    return path


def channels(tmp_path: Path, smtp_port: int, base: str) -> str:
    return f"""alerting:
  channels:
    log: {{path: {tmp_path}/alerts.log}}
    email: {{smtp_server: 127.0.0.1, port: {smtp_port}, recipients: [ops@example.org]}}
    slack: {{webhook_url: "${{TEST_SLACK_URL}}", channel: "#data-alerts"}}
    pagerduty: {{url: "{base}/pd", routing_key: "${{TEST_PD_KEY}}"}}
    sms:
      url: "{base}/sms"
      token: "${{TEST_SMS_TOKEN}}"
      to: ["+15550100"]
      payload_template: '{SMS_TEMPLATE}'
"""


def logged(tmp_path: Path) -> list[dict]:
    path = tmp_path / "alerts.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Ticker:
    """Ticks ``<location>_alert_rules`` over ``assets`` with the notifier of ``cfg``."""

    def __init__(self, tmp_path: Path, instance, assets: list, cfg) -> None:
        self.instance, self.assets = instance, assets
        self.defs = dg.Definitions(assets=assets, jobs=[dg.define_asset_job("prices_job")])
        self.notifier = notifier_from_env(DataStore(root=str(tmp_path), location="test"), cfg)
        self.alerting = effective_alerting(cfg, {}, "test", ("prices",))
        self.sensor = alert_rules_sensor("test", self.alerting, self.defs)
        self.cursor: str | None = None

    def tick(self) -> None:
        with dg.build_sensor_context(
            instance=self.instance, resources={"notifier": self.notifier}, cursor=self.cursor
        ) as context:
            self.sensor(context)
            self.cursor = context.cursor

    def run(self, ok: bool, tick: bool = True) -> None:
        FAIL.clear() if ok else FAIL.set()
        dg.materialize(self.assets, instance=self.instance, raise_on_error=False)
        if tick:
            self.tick()


FAIL = threading.Event()


@dg.asset(group_name="prices")
def quotes() -> int:
    if FAIL.is_set():
        raise RuntimeError("vendor API returned 503")
    return 1
