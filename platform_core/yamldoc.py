"""Where a key sits in a YAML file, for errors that name the file and line."""

from pathlib import Path

import yaml


def yaml_line(file: Path, path: tuple[str, ...]) -> int | None:
    """1-based line of the deepest key of ``path`` found in a YAML file (mapping keys, and list
    indexes as digit strings); None if the file does not parse."""
    try:
        node = yaml.compose(file.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return None
    line = None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
        else:
            break
    return line
