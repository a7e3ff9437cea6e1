"""workspace.yaml from the dg workspace: ``dagster dev -w`` and ``dagster-daemon run -w`` read
workspace.yaml, dg reads dg.toml; this writes the one from the other, so the code locations are
declared once (``dg.toml`` and each ``locations/<name>/dg.toml``).

    python -m platform_core.workspace           write workspace.yaml
    python -m platform_core.workspace --check   exit 1 if workspace.yaml is not up to date
"""

import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HEADER = (
    "# Generated from dg.toml by `python -m platform_core.workspace`: edit dg.toml, not this.\n"
)


def projects(root: Path = ROOT) -> dict[str, str]:
    """Code location name -> its Definitions module, per project of the dg workspace."""
    workspace = tomllib.loads((root / "dg.toml").read_text())["workspace"]
    found = {}
    for entry in workspace["projects"]:
        project = tomllib.loads((root / entry["path"] / "dg.toml").read_text())["project"]
        module = project.get("code_location_target_module", f"{project['root_module']}.definitions")
        found[project.get("code_location_name", project["root_module"])] = module
    return found


def workspace_yaml(root: Path = ROOT) -> str:
    entries = [
        {"python_module": {"module_name": module, "location_name": name}}
        for name, module in projects(root).items()
    ]
    return HEADER + yaml.safe_dump({"load_from": entries}, sort_keys=False)


def main(argv: list[str]) -> int:
    path, text = ROOT / "workspace.yaml", workspace_yaml()
    if "--check" in argv:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date: python -m platform_core.workspace", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
