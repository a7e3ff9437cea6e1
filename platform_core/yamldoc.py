"""Where a key sits in a YAML file, for errors that name the file and line."""

from pathlib import Path
from typing import Any

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


MAX_YAML_BYTES = 1_000_000
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when built with it


class YamlError(ValueError):
    """A YAML file that is not a mapping one may load (the message names the file and line)."""


def _repeated_key(node: yaml.Node | None) -> tuple[int, str] | None:
    """(line, key) of the first key given twice in a mapping of ``node``'s tree."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        return key.start_mark.line + 1, key.value
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None


def load_mapping(
    path: Path, content: bytes | None = None, error: type[ValueError] = YamlError
) -> dict[str, Any]:
    """The YAML mapping in ``path`` (``content``: its bytes, already read), by the safe loader;
    ``error`` (file and line) if it is not one. Aliases (``*name``) are refused: a few hundred
    bytes of nested aliases would expand to billions of values. A key given twice in one
    mapping is refused too (YAML would keep the last one silently)."""
    if content is None and not path.is_file():
        raise error(f"{path}: no such config file")
    try:
        content = path.read_bytes() if content is None else content
        if len(content) > MAX_YAML_BYTES:
            raise error(f"{path}: over {MAX_YAML_BYTES} bytes; a config is at most 1 MB")
        text = content.decode("utf-8")
        events = yaml.parse(text, Loader=SAFE_LOADER)
        alias = next((e for e in events if isinstance(e, yaml.AliasEvent)), None)
        if alias is not None:
            line = alias.start_mark.line + 1
            raise error(f"{path} line {line}: a YAML alias (*{alias.anchor}); not in a config")
        repeated = _repeated_key(yaml.compose(text, Loader=SAFE_LOADER))
        if repeated is not None:
            line, key = repeated
            raise error(f"{path} line {line}: {key!r} is given twice in one mapping")
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise error(f"{path}{where}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply to be a config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: a config is a YAML mapping, not {type(data).__name__}")
    return data
