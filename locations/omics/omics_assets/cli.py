"""``omics``: config-driven omics workflows on the platform's CLI contract (docs/cli.md).

    omics submit --workflow W [--run KEY] | --config F [--param k=v ...] [--save]
                                  resolve the config once (defaults, the workflow's definition,
                                  OMICS_*, F, --param) and register it as a run, no run
    omics run ... (the same)      register if needed, then run it: through the daemon when one
                                  serves the instance, else here. F with a name no loaded
                                  workflow has (and a domain:) is a workflow of your own, run
                                  here; --save copies it into the operator's workflows folder
    omics status [--workflow W | --config F] [--json]
                                  per run: workflow, last run, status, duration
    omics resume --workflow W --run KEY
                                  re-execute the run's last failed Dagster run from its failure
    omics export --workflow W [--run KEY] --step S --out FILE.tsv|.csv|.parquet
                                  the step's table (of the latest run without --run)
    omics demo --out DIR          the shipped workflows' configs, to edit and run with --config
    omics validate --config F     check the resolved config; print it (--json)
    omics steps --config F        the plan: per step, run / reuse / skip / not built, and why
    omics workflows               the workflows and their steps
    omics plot --input T --type manhattan|qq|volcano|ma --out F.png
                                  a quick figure of a results table (plink2, GEMMA, pydeseq2)
    omics fasta-stats FILE ...    sequences, total length, N50 and GC of FASTA files

Without ``--config``, ``--workflow W`` runs W's own config. Exit codes: 0 ok, 1 the run
failed (the failing step and its error are printed), 2 bad arguments, config or input.
"""

import argparse
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from omics_assets import workflows as wf
from omics_assets.assets.steps import STATUS_CHECK
from omics_assets.assets.upstream import upstream_values
from omics_assets.components.loader import daemon_refusal, read_workflow_file, workflows_folder
from omics_assets.components.workflow import refused_workflows, workflows_of
from omics_assets.config import ConfigError, Layer, Resolved, absolute_paths
from omics_assets.inputs import is_registered, register_run
from omics_assets.location import LOCATION
from omics_assets.partitions import workflow_partitions
from omics_assets.quick_commands import add_quick_verbs
from omics_assets.science.domains import STEPS
from omics_assets.science.sample_tables import read_step_table
from platform_core import cli, runstats
from platform_core.checkpoint import latest_materialization
from platform_core.commands import LocationCli, Request, single, table_path, write_table
from platform_core.io import atomic_write_bytes
from platform_core.keys import InvalidKeyError


class OmicsCli(LocationCli):
    location = LOCATION
    submits = True
    export_step = ""
    workflow = ""  # the workflow a run command runs

    own: Path | None = None  # a --config that is a workflow of the user's own, not a run config
    replaces: Path | None = None  # the operator's file of the workflow ``own`` is a new version of

    @cached_property
    def workflows(self) -> dict[str, wf.WorkflowDefinition]:
        """The workflows of the loaded Definitions (not their YAML files again)."""
        return workflows_of(self.session.defs)

    def add_partition_options(self, parser: argparse.ArgumentParser, verb: str) -> None:
        parser.add_argument("--workflow", help="the workflow (default: the config's name:)")
        if verb in ("submit", "run", "export", "status"):
            parser.add_argument("--config", help="the user's config YAML (or own workflow)")
        if verb in ("submit", "run"):
            parser.add_argument(
                "--param",
                action="append",
                metavar="KEY=VALUE",
                help="override one resolved key, e.g. steps.qc.config.maf=0.05 (repeatable)",
            )
            parser.add_argument(
                "--save",
                action="store_true",
                help="keep --config's own workflow in the operator's workflows folder",
            )

    def adopt(self, config: Path) -> str:
        """The workflow ``config`` names. A name no loaded workflow has, or a new version
        (with ``domain:``) of one saved in the operator's folder, makes the file a workflow
        of the user's own, built here (their process: any module) and added to this
        session's Definitions (no reload); another loaded name makes it a run config."""
        from omics_assets.api import definitions_with

        try:
            file, attributes, _ = read_workflow_file(config)
        except ConfigError as error:
            raise cli.CliError(str(error)) from None
        name = attributes.get("name")
        if not name or self.own == config:
            return str(name or "")
        loaded = self.workflows.get(str(name))
        saved = loaded is not None and loaded.file.parent == workflows_folder()
        if loaded is not None and not (saved and "domain" in attributes):
            return str(name)
        if "domain" not in attributes:
            raise cli.CliError(wf.workflow_error(str(name), self.workflows))
        try:
            self.session.defs = definitions_with([file])
        except ConfigError as error:
            raise cli.CliError(str(error)) from None
        self.__dict__.pop("workflows", None)
        self.session.__dict__.pop("asset_keys", None)  # of the Definitions replaced
        self.own, self.replaces = config, loaded.file if saved and loaded else None
        return str(name)

    def resolve(self, args: argparse.Namespace) -> tuple[wf.WorkflowDefinition, Resolved]:
        """The run's config, resolved once (a workflow of the user's own: its definition is
        the file; it runs here)."""
        config = Path(args.config) if getattr(args, "config", None) else None
        if config is None and not args.workflow:
            raise cli.CliError("give --config FILE or --workflow NAME")
        if config is not None:
            args.workflow = args.workflow or self.adopt(config)
        try:
            params = getattr(args, "param", None) or ()
            user = None if self.own == config else config
            resolved = wf.resolve_run(self.workflows, args.workflow, user, params)
        except (ConfigError, InvalidKeyError) as error:
            raise cli.CliError(str(error)) from None
        if self.own is not None and hasattr(args, "here"):
            args.here = True  # the daemon does not have it
        if getattr(args, "save", False):
            self.save(config, resolved.config["name"])
        return self.workflows[resolved.config["name"]], resolved

    def save(self, config: Path | None, name: str) -> None:
        """Copy the user's own workflow into the operator's folder (loaded by the UI, the
        daemon and the inbox once the location reloads)."""
        if config is None or self.own != config:
            raise cli.CliError(
                f"--save keeps a workflow of your own (a --config with a new name:); "
                f"{name} is loaded already from {self.workflows[name].file}"
            )
        folder = workflows_folder()
        folder.mkdir(parents=True, exist_ok=True)
        target = self.replaces or folder / f"{name}.yaml"
        if target.exists() and _declared_name(target) != name:
            raise cli.CliError(f"--save: {target} holds another workflow; not replaced")
        file, attributes, prefix = read_workflow_file(config)
        layer = Layer(str(file), dict(attributes), file, prefix)
        fixed = absolute_paths(attributes["domain"], layer)  # relative to F, not to the folder
        header = f"# saved by omics run --config {str(config)!r}\n"  # one line, whatever the path
        atomic_write_bytes(target, (header + yaml.safe_dump(fixed)).encode())  # never half a file
        print(
            f"saved workflow {name} to {target}; the UI, the daemon and the inbox serve it once "
            "the location reloads (the UI's Reload, or dagster dev picking up the change)",
            file=sys.stderr,
        )
        why = daemon_refusal(target)
        if why:
            print(f"warning: the daemon will refuse it: {why}", file=sys.stderr)

    def definition(self, args: argparse.Namespace) -> wf.WorkflowDefinition:
        if getattr(args, "config", None):
            config = Path(args.config)
            args.workflow = args.workflow or self.adopt(config)
            if not args.workflow:
                raise cli.CliError(f"{config}: name the workflow (`name:` in the file)")
        if not args.workflow:
            raise cli.CliError("give --workflow NAME")
        try:
            return wf.workflow(self.workflows, args.workflow)
        except ConfigError as error:
            raise cli.CliError(str(error)) from None

    def register_inputs(self, args: argparse.Namespace) -> list[str]:
        definition, resolved = self.resolve(args)
        config = Path(args.config) if args.config else None
        key = args.id or wf.default_run_key(resolved, config)
        try:
            register_run(self.session.store, definition, key, resolved.config)
        except (ConfigError, InvalidKeyError) as error:
            raise cli.CliError(str(error)) from None
        self.session.instance.add_dynamic_partitions(definition.partitions_name, [key])
        args.workflow = definition.name
        writes = self.session.store.resolve(resolved.config["work_dir"]).resolve() / "steps"
        print(
            f"run {key} of workflow {definition.name} registered; its steps write under {writes}",
            file=sys.stderr,
        )
        return [key]

    def keys(self, args: argparse.Namespace) -> list[str]:
        if args.id and not args.config and not args.param:  # a registered run, by name
            definition = self.definition(args)
            return [self.require_run(definition, args.id)]
        return self.register_inputs(args)

    def require_run(self, definition: wf.WorkflowDefinition, key: str) -> str:
        hint = f"run it with 'omics run --workflow {definition.name}'"
        partitions = workflow_partitions(definition)
        return cli.require_partition(self.session.instance, partitions, key, "--run", hint)

    def request(self, args: argparse.Namespace, keys: list[str]) -> Request:
        self.workflow = args.workflow
        job = self.session.defs.resolve_job_def(args.workflow)
        assets = sorted(job.asset_layer.executable_asset_keys)
        what = f"omics {args.workflow} run {keys[0]}"
        return Request({job.name: {a: keys for a in assets}}, {}, self.tags(args), what)

    def what(self, run: Mapping[str, Any]) -> str:
        return f"workflow {run['job'] or self.workflow} run {single(run['partitions'])}"

    def after_run(self, keys: list[str], args: argparse.Namespace) -> None:
        """The run's notices (skipped steps, quality warnings), how it ended and, with
        --json, its status row."""
        for run in self.runs:
            for notice in self.notices(run["run_id"]) if run["run_id"] else ():
                print(notice, file=sys.stderr if args.json else sys.stdout)
        self.report_runs(args)
        if args.json:
            cli.print_json(self.status_of([self.workflow], keys))

    def notices(self, run_id: str) -> list[str]:
        """The run's failed checks: steps skipped at run time (with the reason) and quality
        warnings."""
        out = []
        kind = dg.DagsterEventType.ASSET_CHECK_EVALUATION
        for entry in self.session.instance.all_logs(run_id, of_type=kind):
            evaluation = entry.dagster_event.event_specific_data
            if not evaluation.passed:
                label = "skipped" if evaluation.check_name == STATUS_CHECK else "warning"
                out.append(
                    f"{label} {evaluation.asset_key.to_user_string()}: {evaluation.description}"
                )
        return out

    def last_run(self, key: str, jobs: Sequence[str] = ()) -> dg.RunRecord | None:
        runs = [r for r in self.session.runs_of(key) if not jobs or r.dagster_run.job_name in jobs]
        return max(runs, key=lambda r: r.create_timestamp, default=None)

    def status_of(self, names: Sequence[str], keys: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Per registered run of the workflows ``names`` (only ``keys`` if given): workflow,
        run, and how its last Dagster run went."""
        inst, store = self.session.instance, self.session.store
        rows: list[dict[str, Any]] = []
        for name in names:
            definition = self.workflows[name]
            for key in keys or inst.get_dynamic_partitions(definition.partitions_name):
                last = self.last_run(key, [name])
                if last or is_registered(store, definition, key):
                    rows.append({"workflow": name, "run": key, **runstats.run_summary(last)})
        return rows

    def cmd_status(self, args: argparse.Namespace) -> int:
        named = args.workflow or args.config
        names = [self.definition(args).name] if named else list(self.workflows)
        keys = [self.require_run(self.workflows[names[0]], args.id)] if args.id else []
        columns = ["workflow", "run", "status", "started", "duration_s", "last_run"]
        cli.print_rows(self.status_of(names, keys), columns, args.json)
        return 0

    def cmd_resume(self, args: argparse.Namespace) -> int:
        definition = self.definition(args)
        key = self.require_run(definition, args.id)
        last = self.last_run(key, [definition.name])
        what = f"workflow {definition.name} run {key}"
        code = cli.resume(self.session.instance, LOCATION.module, last, what, args.json)
        if args.json:
            cli.print_json(self.status_of([definition.name], [key]))
        return code

    def cmd_export(self, args: argparse.Namespace) -> int:
        """The step's table (its first TSV) of run ``--run``, or of the latest run."""
        out = table_path(args.out)
        if not args.step:
            raise cli.CliError("give --step STEP (a step of the workflow)")
        definition = self.definition(args)
        key = self.require_run(definition, args.id) if args.id else None
        asset = dg.AssetKey([definition.name, args.step])
        record = latest_materialization(self.session.instance, asset, key)
        if record is None:
            raise cli.CliError(f"{asset.to_user_string()} has never been materialized")
        meta = record.asset_materialization.metadata
        tables = [n for n in meta["files_created"].value if n.endswith(".tsv")]
        if not tables:
            raise cli.CliError(f"step {args.step} has no table to export")
        table = read_step_table(Path(meta["output_dir"].value) / tables[0]).reset_index()
        spec = next((s for s in STEPS[definition.domain] if s.name == args.step), None)
        table = table[list(spec.export) if spec and spec.export else list(table.columns)]
        write_table(table, out)
        partition = record.asset_materialization.partition
        print(f"{asset.to_user_string()} (run {partition}): {len(table)} rows -> {out}")
        return 0

    def demo(self, args: argparse.Namespace) -> int:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for definition in self.workflows.values():
            config = wf.resolve_run(self.workflows, definition.name).config
            body = {"name": definition.name, "steps": config["steps"]}
            path = out / f"{definition.name}.yaml"
            path.write_text(
                f"# workflow {definition.name} ({definition.domain}): edit, then\n"
                f"#   omics run --config {path.name}\n" + yaml.safe_dump(body, sort_keys=False)
            )
            print(path)
        return 0

    def add_verbs(self, commands: Any) -> None:
        for name, func, text in (
            ("validate", self.cmd_validate, "check and print the resolved config"),
            ("steps", self.cmd_steps, "what a run would do per step, and why"),
        ):
            p = commands.add_parser(name, help=text)
            self.add_partition_options(p, "run")
            p.add_argument("--json", action="store_true")
            p.set_defaults(func=func)
        p = commands.add_parser("workflows", help="the workflows")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=self.cmd_workflows)
        add_quick_verbs(commands)

    def cmd_validate(self, args: argparse.Namespace) -> int:
        definition, resolved = self.resolve(args)
        if args.json:
            cli.print_json(resolved.config)
        else:
            steps = [s for s, t in resolved.config["steps"].items() if t["enabled"]]
            print(
                f"valid: workflow {definition.name} ({definition.domain}), steps {', '.join(steps)}"
            )
        return 0

    def cmd_steps(self, args: argparse.Namespace) -> int:
        definition, resolved = self.resolve(args)
        config = resolved.config
        reads = [r for s in definition.specs(config) for r in s.needs if "." in r]
        found = upstream_values(self.session.instance, config["inputs"], reads) if reads else {}
        upstream = (
            {r: (v["run"], v["fingerprint"]) for r, v in found.items()}
            if isinstance(found, dict)
            else {}
        )
        plan = wf.plan(self.session.store, definition, config, upstream)
        rows = [
            {"step": p.step, "action": p.action, "reads": ", ".join(p.reads) or "-", "why": p.why}
            for p in plan
        ]
        if args.json:
            cli.print_json(rows)
        else:
            print(f"workflow {definition.name} ({definition.domain}):")
            cli.print_table(rows, ["step", "action", "reads", "why"])
        return 0

    def cmd_workflows(self, args: argparse.Namespace) -> int:
        rows = [
            {
                "workflow": d.name,
                "domain": d.domain,
                "steps": ", ".join(d.steps),
                "definition": str(d.file),
            }
            for d in self.workflows.values()
        ] + [
            {"workflow": "-", "domain": "-", "steps": f"not built: {why}", "definition": file}
            for file, why in refused_workflows(self.session.defs).items()
        ]
        cli.print_rows(rows, ["workflow", "domain", "steps", "definition"], args.json)
        return 0


def _declared_name(file: Path) -> object:
    """The ``name:`` a workflow file declares (None if it cannot be read)."""
    try:
        return read_workflow_file(file)[1].get("name")
    except ConfigError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = OmicsCli().parser("omics", __doc__.split("\n\n")[0]).parse_args(argv)
    try:
        return cli.dispatch(args)
    except ConfigError as error:
        cli.fail(str(error))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
