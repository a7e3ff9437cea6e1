"""asset-platform: the platform's own command, over every code location of workspace.yaml.

    asset-platform health [--json]          every location's pipelines and the system checks;
                                            exit 0 healthy, 1 not
    asset-platform config check [--json]    validate the platform config file and every
                                            location's section; exit 2 naming file and line
    asset-platform config show [--json]     what each location takes from it

Every sub-command takes ``--platform-config FILE`` (default ``$PLATFORM_CONFIG``).
"""

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from platform_core import cli, health, platform_config, workspace
from platform_core.datastore import operator_root
from platform_core.errors import CliError

if TYPE_CHECKING:
    from platform_core.session import Session


class PlatformParser(argparse.ArgumentParser):
    """A sub-command's parser (``add_subparsers(parser_class=...)``): each takes
    ``--platform-config FILE``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--platform-config",
            metavar="FILE",
            help=f"the platform config file (default: ${platform_config.CONFIG_ENV})",
        )


def print_health(report: Mapping[str, Any], as_json: bool) -> int:
    """A health report as JSON or as two tables (system checks, pipelines); 0 if healthy."""
    if as_json:
        cli.print_json(report)
    else:
        print(f"{'healthy' if report['healthy'] else 'UNHEALTHY'} at {report['checked_at']}")
        checks = [{"check": name, **check} for name, check in report["system"].items()]
        cli.print_table(checks, ["check", "status", "required", "detail"])
        print()
        rows = [
            {"pipeline": name, **p, "problems": "; ".join(p["problems"])}
            for name, p in report["pipelines"].items()
        ]
        columns = ["pipeline", "status", "data_freshness", "error_rate", "avg_duration_s"]
        cli.print_table(rows, [*columns, "last_run_at", "problems"])
    return 0 if report["healthy"] else 1


def add_health_verb(commands: Any, session: "Session", location: str) -> None:
    """A location CLI's ``health [--json]``: its pipelines and the system checks."""

    def cmd_health(args: argparse.Namespace) -> int:
        cfg = platform_config.load()  # cli.dispatch made --platform-config this process's
        instance, defs = session.instance, session.defs
        return print_health(health.location_health(instance, defs, location, cfg), args.json)

    add_health_parser(commands, cmd_health, "pipelines and system checks; exit 1 if unhealthy")


def add_health_parser(commands: Any, func: Callable[[argparse.Namespace], int], text: str) -> None:
    p = commands.add_parser("health", help=text)
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=func)


def refuse_other_config(args: argparse.Namespace, daemon_config: Path | None) -> None:
    """A run through the daemon uses the daemon's config file (``$PLATFORM_CONFIG`` as the
    command started): another ``--platform-config`` is refused."""
    given = platform_config.config_path(args.platform_config)
    if not args.here and args.platform_config and given != daemon_config:
        raise CliError(f"--platform-config {given}: the daemon uses its own file; use --here")


def location_defs(module: str) -> Any:
    """A location's Definitions (its module's ``defs``); a bad config section raises
    ``ConfigError``, naming the file and line."""
    return importlib.import_module(module).defs


def cmd_health(args: argparse.Namespace) -> int:
    cfg = platform_config.load()  # cli.dispatch made --platform-config this process's
    instance = cli.instance()
    system = health.system_health(instance, cfg.model.health, operator_root())
    report: dict[str, Any] = {"healthy": True, "system": system, "pipelines": {}, "locations": {}}
    for name, module in workspace.projects().items():
        try:
            found = health.location_health(instance, location_defs(module), name, cfg, system)
        except platform_config.ConfigError:
            raise
        except Exception as error:  # a location that does not load is unhealthy, not fatal
            found = {"healthy": False, "error": f"{type(error).__name__}: {error}"}
        for group, figures in found.get("pipelines", {}).items():
            report["pipelines"][f"{name}/{group}"] = figures
        report["locations"][name] = {k: found[k] for k in ("healthy", "error") if k in found}
    report["healthy"] = all(c["status"] != "fail" for c in system.values()) and all(
        loc["healthy"] for loc in report["locations"].values()
    )
    report["checked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    for name, loc in report["locations"].items():
        if "error" in loc:
            print(f"error: location {name} does not load: {loc['error']}", file=sys.stderr)
    return print_health(report, args.json)


def cmd_config(args: argparse.Namespace) -> int:
    cfg = platform_config.load()  # cli.dispatch made --platform-config this process's
    projects = workspace.projects()
    if args.action == "check":
        for module in projects.values():  # each location validates its own section
            location_defs(module)
        result: Any = {"file": str(cfg.file) if cfg.file else None, "digest": cfg.digest}
        result |= {"valid": True, "locations": sorted(projects)}
    else:
        result = {name: cfg.record(name) for name in projects}
    if args.json:
        cli.print_json(result)
    elif args.action == "check":
        print(f"{cfg.file or 'no config file: the defaults'}: valid for {', '.join(projects)}")
    else:
        print(yaml.safe_dump(result, sort_keys=False), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="asset-platform", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True, parser_class=PlatformParser)
    add_health_parser(commands, cmd_health, "every location's pipelines and the system checks")
    p = commands.add_parser("config", help="the platform config file: check it, show it")
    p.add_argument("action", choices=["check", "show"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    return cli.dispatch(parser().parse_args(argv))  # a bad config file: exit 2


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
