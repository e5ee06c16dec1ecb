"""YAML reading with line numbers: libyaml speed, PyYAML 1.1 semantics (what azure-ai-ml and `az ml` use),
duplicate keys rejected, and a 1-based source line for every key path so findings can point at it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

try:  # the C parser; PyYAML wheels ship it
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure Python fallback
    _BaseLoader = yaml.SafeLoader

KeyPath = tuple[str | int, ...]


class LinedDict(dict):
    """A mapping that remembers the line of each of its keys (1-based) and its own first line."""

    __slots__ = ("key_lines", "line")

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}
        self.line = 0


class LinedList(list):
    """A sequence that remembers the line of each item (1-based) and its own first line."""

    __slots__ = ("item_lines", "line")

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []
        self.line = 0


@dataclass(frozen=True)
class YamlProblem(Exception):
    """Malformed YAML or a duplicate key: where (1-based line, key path) and what."""

    line: int
    key_path: KeyPath
    message: str

    def __str__(self) -> str:
        return self.message


class _LinedLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    def construct_lined_mapping(self, node: yaml.MappingNode) -> LinedDict:
        mapping = LinedDict()
        mapping.line = node.start_mark.line + 1
        yield mapping
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise YamlProblem(key_node.start_mark.line + 1, (), "a mapping key must be a plain scalar") from None
            if key in mapping:
                first = mapping.key_lines[key]
                raise YamlProblem(
                    key_node.start_mark.line + 1,
                    (key,),
                    f"duplicate key '{key}' (first defined on line {first}; YAML keeps only the last one)",
                )
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.key_lines[key] = key_node.start_mark.line + 1

    def construct_lined_sequence(self, node: yaml.SequenceNode) -> LinedList:
        sequence = LinedList()
        sequence.line = node.start_mark.line + 1
        yield sequence
        for item_node in node.value:
            sequence.append(self.construct_object(item_node, deep=True))
            sequence.item_lines.append(item_node.start_mark.line + 1)


_LinedLoader.add_constructor("tag:yaml.org,2002:map", _LinedLoader.construct_lined_mapping)
_LinedLoader.add_constructor("tag:yaml.org,2002:seq", _LinedLoader.construct_lined_sequence)


def _duplicate_key_path(text: str, line: int) -> KeyPath:
    """Full key path of the duplicate key found on ``line`` (re-walks the node tree; only runs on that error)."""

    def walk(node: yaml.Node, path: KeyPath) -> KeyPath | None:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key_node.start_mark.line + 1 == line and key in seen:
                    return (*path, key)
                seen.add(key)
                found = walk(value_node, (*path, key))
                if found:
                    return found
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                found = walk(item, (*path, index))
                if found:
                    return found
        return None

    root = yaml.compose(text, Loader=_BaseLoader)
    return (root is not None and walk(root, ())) or ()


def load_lined(text: str) -> Any:
    """Parse one YAML document into LinedDict/LinedList/scalars. Raises YamlProblem on syntax or duplicate keys."""
    try:
        return yaml.load(text, Loader=_LinedLoader)  # noqa: S506 - a SafeLoader subclass
    except YamlProblem as problem:
        if problem.key_path:
            raise YamlProblem(
                problem.line, _duplicate_key_path(text, problem.line) or problem.key_path, problem.message
            ) from None
        raise
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        what = error.problem or error.context or "malformed YAML"
        raise YamlProblem(line, (), f"YAML syntax: {what}") from None
    except yaml.YAMLError as error:
        raise YamlProblem(1, (), f"YAML syntax: {error}") from None


def line_of(data: Any, key_path: KeyPath) -> int | None:
    """The 1-based line of the deepest existing element on ``key_path`` (the key's own line where it exists)."""
    node = data
    line = getattr(data, "line", None) or None
    for part in key_path:
        if isinstance(node, LinedDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LinedList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def format_key_path(key_path: KeyPath) -> str:
    """``('jobs', 'ft', 'inputs', 'x')`` -> ``jobs.ft.inputs.x``; list indices as ``[0]``."""
    out = ""
    for part in key_path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def plain(data: Any) -> Any:
    """Deep copy into plain dict/list (for libraries that check exact types)."""
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [plain(item) for item in data]
    return data
