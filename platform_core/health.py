"""Health of the platform, as the seed's ``PipelineHealthMonitor`` reports it: per pipeline
(asset group) its last run, status, data freshness, error rate and average duration; for the
system the database, disk space, memory, the daemon's heartbeats, the web server and any
configured endpoints.

The CLIs print it (``<cli> health``, ``asset-platform health``); in the daemon the sensor
``<l>_health`` records the same checks as asset check evaluations on ``[<l>,
platform_health]``, so the UI shows them; a rule naming that group alerts on them.
No CLI module is imported here (tests/test_imports.py).
"""

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from platform_core.alerts import HEALTH_GROUP, effective_alerting
from platform_core.datastore import operator_root
from platform_core.platform_config import LoadedConfig
from platform_core.platform_models import HealthConfig
from platform_core.runstats import RunHistory, pipelines

Status = Literal["ok", "warn", "fail", "skipped"]
SYSTEM_CHECKS = ("database", "disk_space", "memory", "daemon_heartbeat", "webserver")
BACKFILL_DAEMON = "BACKFILL"
HEARTBEAT_FRESH_SECONDS = 60.0  # the daemon beats every 30 s: one beat may be late
HTTP_TIMEOUT_SECONDS = 3.0
Probe = Callable[[], tuple[bool | None, str, Any]]  # passed (None: not measurable), detail, value


def daemon_serves(instance: dg.DagsterInstance) -> bool:
    """Whether a backfill daemon heartbeat on this instance is recent (``dagster dev``,
    ``deploy/up.sh``): then a submitted backfill will be worked on."""
    beat = instance.get_daemon_heartbeats().get(BACKFILL_DAEMON)
    return beat is not None and time.time() - beat.timestamp < HEARTBEAT_FRESH_SECONDS


def _heartbeats(instance: dg.DagsterInstance) -> tuple[bool | None, str, Any]:
    """The daemons this instance needs (its run coordinator, schedules, sensors, backfills
    ...): each one's heartbeat is recent. A daemon type no longer run is not counted."""
    beats = instance.get_daemon_heartbeats()
    if not beats:
        return False, "no daemon has ever beaten on this instance", None
    required = set(instance.get_required_daemon_types())
    missing = sorted(required - set(beats))
    if missing:
        return False, f"never beaten: {', '.join(missing)}", None
    ages = {kind: round(time.time() - beat.timestamp, 1) for kind, beat in beats.items()
            if kind in required}  # fmt: skip
    late = sorted(kind for kind, age in ages.items() if age >= HEARTBEAT_FRESH_SECONDS)
    detail = f"late (>= {HEARTBEAT_FRESH_SECONDS:.0f} s): {', '.join(late)}" if late else ""
    return not late, detail or f"{len(ages)} daemons beating", max(ages.values())


def _database(instance: dg.DagsterInstance) -> tuple[bool | None, str, Any]:
    started = time.monotonic()
    instance.get_runs(limit=1)
    ms = round((time.monotonic() - started) * 1000, 1)
    return True, f"{type(instance.run_storage).__name__} answered in {ms} ms", ms


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _disk(paths: list[Path], min_free_gb: float) -> tuple[bool | None, str, Any]:
    free = {path: shutil.disk_usage(_existing(path)).free / 1e9 for path in paths}
    path, gb = min(free.items(), key=lambda item: item[1])
    return gb >= min_free_gb, f"{gb:.2f} GB free at {path} (minimum {min_free_gb} GB)", gb


def _memory(max_used: float, meminfo: Path = Path("/proc/meminfo")) -> tuple[bool | None, str, Any]:
    if not meminfo.exists():
        return None, f"{meminfo} not found: not measured", None
    fields = {
        name: int(value.split()[0])
        for name, _, value in (line.partition(":") for line in meminfo.read_text().splitlines())
        if value.strip()
    }
    used = 1 - fields["MemAvailable"] / fields["MemTotal"]
    total_gb = fields["MemTotal"] * 1024 / 1e9
    return used <= max_used, f"{used:.0%} of {total_gb:.1f} GB used (maximum {max_used:.0%})", used


def _http(url: str, expect: str | None = None) -> tuple[bool | None, str, Any]:
    """GET ``url``: passed on a 2xx answer (a JSON object holding ``expect``, when given)."""
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as answer:
        body = answer.read()
    if expect is not None:
        found = json.loads(body).get(expect)
        return found is not None, f"{url}: {expect} {found}", found
    return True, f"{url}: HTTP {answer.status}", answer.status


def _verdict(probe: Probe, required: bool) -> dict[str, Any]:
    try:
        passed, detail, value = probe()
    except Exception as error:  # unreachable, unreadable; any storage error: no answer
        passed, detail, value = False, f"{type(error).__name__}: {error}", None
    status: Status = "skipped" if passed is None else "ok" if passed else "fail"
    if status == "fail" and not required:
        status = "warn"
    if isinstance(value, float):
        value = round(value, 3)
    return {"status": status, "required": required, "detail": detail, "value": value}


def webserver_url(cfg: HealthConfig) -> str:
    """``health.webserver_url``, else the web server ``deploy/up.sh`` and ``run.sh`` start
    (``DAGSTER_WEB_HOST``, ``DAGSTER_WEB_PORT``; default 127.0.0.1:3000)."""
    if cfg.webserver_url:
        return cfg.webserver_url.rstrip("/")
    host = os.environ.get("DAGSTER_WEB_HOST") or "127.0.0.1"
    return f"http://{host}:{os.environ.get('DAGSTER_WEB_PORT') or 3000}"


def system_health(
    instance: dg.DagsterInstance, cfg: HealthConfig, data_root: Path
) -> dict[str, dict[str, Any]]:
    """Each system check: ``{status: ok|warn|fail|skipped, required, detail, value}``. A check
    that fails is ``fail`` when ``cfg.require`` lists it (configured endpoints always count),
    else ``warn``; ``skipped`` when it cannot be measured here."""
    home = Path(instance.root_directory)
    probes: dict[str, Probe] = {
        "database": lambda: _database(instance),
        "disk_space": lambda: _disk([data_root, home], cfg.min_free_disk_gb),
        "memory": lambda: _memory(cfg.max_memory_used_fraction),
        "daemon_heartbeat": lambda: _heartbeats(instance),
        "webserver": lambda: _http(f"{webserver_url(cfg)}/server_info", "dagster_version"),
    }
    for name, url in cfg.endpoints.items():
        probes[f"endpoint_{name}"] = lambda url=url: _http(url)
    return {
        name: _verdict(probe, name in cfg.require or name.startswith("endpoint_"))
        for name, probe in probes.items()
    }


def pipeline_health(
    history: RunHistory, group: str, cfg: LoadedConfig, now: float | None = None
) -> dict[str, Any]:
    """One pipeline's figures (``runstats.PipelineStats``) with ``healthy`` and ``problems``:
    its last run failed, its data is stale, or its error rate is above the strictest
    error-rate rule that applies to it (with at least the rule's ``min_runs`` runs)."""
    location = history.location
    rules = effective_alerting(cfg).rules_for("error_rate", location, group)
    rule = min(rules, key=lambda r: r.threshold or 0.0, default=None)
    window = {"window_runs": rule.window_runs, "window_hours": rule.window_hours} if rule else {}
    max_age = cfg.pipeline(location, group).max_data_age_hours
    stats = history.stats(group, max_data_age_hours=max_age, now=now, **window)
    problems = []
    if stats.status == "FAILURE":
        problems.append(f"last run {stats.last_run} failed")
    if stats.data_freshness == "stale":
        problems.append(f"data stale ({stats.data_age_hours} h old)")
    rate, threshold = stats.error_rate, rule.threshold if rule else None
    if rule and rate is not None and stats.runs_in_window >= rule.min_runs and rate > threshold:
        problems.append(f"error rate {rate:.2f} > {threshold}")
    figures = {k: v for k, v in asdict(stats).items() if k not in ("location", "pipeline")}
    return {**figures, "healthy": not problems, "problems": problems}


def location_health(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    location: str,
    cfg: LoadedConfig,
    system: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``{location, healthy, checked_at, pipelines: {group: ...}, system: {check: ...}}``;
    healthy when no system check is ``fail`` and every pipeline is healthy. ``system``: the
    system checks made already (one pass for several locations)."""
    if system is None:
        system = system_health(instance, cfg.model.health, operator_root())
    history = RunHistory(instance, defs, location)
    groups = {g: pipeline_health(history, g, cfg) for g in pipelines(defs)}
    healthy = all(c["status"] != "fail" for c in system.values()) and all(
        p["healthy"] for p in groups.values()
    )
    return {
        "location": location,
        "healthy": healthy,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipelines": groups,
        "system": dict(system),
    }


def evaluations(asset: dg.AssetKey, report: Mapping[str, Any]) -> list[dg.AssetCheckEvaluation]:
    """The checks of a health report: one per system check (a ``warn`` fails with WARN
    severity) and one ``pipeline_<group>`` per pipeline."""
    found = []
    for name, check in report["system"].items():
        found.append(
            dg.AssetCheckEvaluation(
                asset_key=asset,
                check_name=name,
                passed=check["status"] in ("ok", "skipped"),
                severity=dg.AssetCheckSeverity.WARN
                if check["status"] == "warn"
                else dg.AssetCheckSeverity.ERROR,
                description=check["detail"],
                metadata={k: v for k, v in check.items() if k != "detail" and v is not None},
            )
        )
    for group, figures in report["pipelines"].items():
        found.append(
            dg.AssetCheckEvaluation(
                asset_key=asset,
                check_name=f"pipeline_{group}",
                passed=figures["healthy"],
                description="; ".join(figures["problems"]) or "healthy",
                metadata={k: v for k, v in figures.items() if v is not None and k != "problems"},
            )
        )
    return found


def health_definitions(location: str, loaded: dg.Definitions, cfg: LoadedConfig) -> dg.Definitions:
    """The health asset ``[<l>, platform_health]`` with its checks (runnable from the UI) and
    the RUNNING sensor ``<l>_health`` that records them every ``health.interval_seconds``."""
    asset = dg.AssetKey([location, "platform_health"])
    names = [*SYSTEM_CHECKS, *(f"endpoint_{n}" for n in cfg.model.health.endpoints)]
    names += [f"pipeline_{group}" for group in pipelines(loaded)]
    spec = dg.AssetSpec(asset, group_name=HEALTH_GROUP, description=f"Health of {location}.")

    def report(instance: dg.DagsterInstance) -> list[dg.AssetCheckEvaluation]:
        return evaluations(asset, location_health(instance, loaded, location, cfg))

    @dg.multi_asset_check(
        name=f"{location}_platform_health",
        specs=[dg.AssetCheckSpec(name, asset=asset) for name in names],
        can_subset=True,
    )
    def health_checks(context: dg.AssetCheckExecutionContext):
        wanted = {key.name for key in context.selected_asset_check_keys}
        for found in report(context.instance):
            if found.check_name in wanted:
                yield dg.AssetCheckResult(
                    asset_key=asset,
                    check_name=found.check_name,
                    passed=found.passed,
                    severity=found.severity,
                    description=found.description,
                    metadata=found.metadata,
                )

    @dg.sensor(
        name=f"{location}_health",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=cfg.model.health.interval_seconds,
        description="Records the health checks of this location (`<cli> health`).",
    )
    def health_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return dg.SensorResult(asset_events=report(context.instance))

    return dg.Definitions(assets=[spec], asset_checks=[health_checks], sensors=[health_sensor])
