"""YAML reading with line numbers and bounds: libyaml speed, PyYAML 1.1 semantics (what azure-ai-ml and `az ml`
use), duplicate keys rejected, and a 1-based source line for every key path so findings can point at it.

Every YAML file the tools read (specs, values, contracts, catalog, kinds) goes through here, and hostile input ends
in one :class:`YamlProblem` (line, key path, message), never a traceback or unbounded memory:

- bytes are decoded as UTF-8 here, so a bad byte is named by line and column (``decode``/``read_text``);
- a file over ``MAX_BYTES``, nesting deeper than ``MAX_DEPTH``, more than ``MAX_NODES`` keys, values and items, and
  a NUL character are refused (the node bound keeps what walks the data afterwards, azure-ai-ml's loaders
  included, within seconds: the largest spec in Azure/azureml-assets and azureml-examples holds about 1,100);
- aliases are allowed (YAML and azure-ai-ml's ``yaml.safe_load`` accept them) but may add at most
  ``MAX_ALIAS_NODES`` nodes when expanded, so a few hundred bytes of "billion laughs" cannot grow memory in
  whatever walks the data afterwards;
- mapping keys must be strings: Azure ML's schemas (marshmallow ``Dict(keys=Str)``, JSON Schema) accept no other,
  and YAML 1.1 silently turns ``yes:``/``1:``/``2024-01-01:`` keys into bools, ints and dates.
- a value the parser accepts but PyYAML cannot build (a date-looking ``2024-13-45``, ``!!bool maybe``, ``!!int abc``,
  ``--- !!seq`` on a mapping, an integer past Python's int-string limit of ``sys.get_int_max_str_digits()`` digits)
  is a YamlProblem on that value's line and key path, not the constructor's ValueError/KeyError/AttributeError.

The bounds are checked on the event stream (flat, no recursion) before anything is built.
"""

from __future__ import annotations

import codecs
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:  # the C parser; PyYAML wheels ship it
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure Python fallback
    _BaseLoader = yaml.SafeLoader

KeyPath = tuple[str | int, ...]

MAX_BYTES = 4 * 1024 * 1024  # the largest spec or values file read (real ones are a few KB)
MAX_DEPTH = 100  # nested mappings/sequences (Azure ML specs nest about 6 deep)
MAX_ALIAS_NODES = 10_000  # nodes that expanding every alias may add (a `<<: *defaults` adds a handful)
MAX_NODES = 20_000  # keys, values and items in one document (real specs: at most ~1,100; 20,000 validate in seconds)


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
    column: int | None = None  # 1-based, where known (a bad byte)

    def __str__(self) -> str:
        return self.message


def _line_col(data: bytes | str, index: int) -> tuple[int, int]:
    """1-based line and column of position ``index``."""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, index) + 1  # type: ignore[arg-type]
    return line, index - (data.rfind(newline, 0, index) + 1) + 1  # type: ignore[arg-type]


def decode(data: bytes) -> str:
    """The text of a YAML file's bytes: UTF-8 (a leading BOM dropped), at most ``MAX_BYTES``, no NUL character.
    Raises YamlProblem naming the line and column of the first bad byte."""
    if len(data) > MAX_BYTES:
        raise YamlProblem(1, (), f"file is {len(data)} bytes; YAML files are read up to {MAX_BYTES} bytes")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _line_col(data, error.start)
        raise YamlProblem(
            line, (), f"not UTF-8: byte 0x{data[error.start]:02x} at column {column} ({error.reason})", column
        ) from None
    _refuse_nul(text)
    return text


def read_text(path: str | Path) -> str:
    """Read a YAML file as text through :func:`decode` (OSError propagates: the caller names the file)."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return decode(data)


def _refuse_nul(text: str) -> None:
    index = text.find("\x00")
    if index >= 0:
        line, column = _line_col(text, index)
        raise YamlProblem(line, (), f"NUL character at column {column} (YAML text cannot hold one)", column)


def _too_many_nodes(line: int) -> YamlProblem:
    return YamlProblem(
        line, (), f"more than {MAX_NODES:,} keys, values and items (the limit is crossed on this line); an Azure ML "
        "spec or values file holds about a thousand at most: split the file or remove what nothing reads"
    )


def _check_bounds(text: str) -> None:
    """Depth, node count, alias expansion and NUL characters, from the event stream (before any node is built)."""
    if len(text) > MAX_BYTES:
        raise YamlProblem(1, (), f"text is {len(text)} characters; YAML is read up to {MAX_BYTES}")
    _refuse_nul(text)
    frames: list[list[Any]] = []  # per open collection: [anchor, expanded node count]
    anchors: dict[str, int] = {}
    added = nodes = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, (yaml.CollectionStartEvent, yaml.ScalarEvent)):
            nodes += 1
            if nodes > MAX_NODES:
                raise _too_many_nodes(line)
        if isinstance(event, yaml.CollectionStartEvent):
            if len(frames) >= MAX_DEPTH:
                raise YamlProblem(line, (), f"nested more than {MAX_DEPTH} levels deep")
            frames.append([event.anchor, 1])
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, cost = frames.pop()
        elif isinstance(event, yaml.ScalarEvent):
            if "\x00" in event.value:
                raise YamlProblem(line, (), "a value holds a NUL character (\\0)")
            anchor, cost = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            anchor, cost = None, anchors.get(event.anchor, 1)
            added += cost
            if added > MAX_ALIAS_NODES:
                raise YamlProblem(
                    line, (), f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?); write the "
                    f"values out instead of repeating *{event.anchor}"
                )
        else:
            continue
        if anchor:
            anchors[anchor] = cost
        if frames:
            frames[-1][1] += cost


# what PyYAML's constructors raise, past the parser, on a value they cannot build (int('abc'), a 13th month,
# bool_values['maybe'], a tuple where a node was expected, an int over the int-string limit)
_BUILD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError)


class _Unbuildable(Exception):
    """A node PyYAML parsed but could not build; each enclosing collection prepends its key or index to ``path``."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node, self.message = node, message
        self.path: list[str | int] = []

    def within(self, part: str | int) -> _Unbuildable:
        self.path.insert(0, part)
        return self


def _shown(text: str, limit: int = 40) -> str:
    """A scalar's text cut for a one-line message (a 5,000-digit integer must not become the message)."""
    return repr(text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)")


_TAG_NAMES = {
    "tag:yaml.org,2002:" + name: f"!!{name}"
    for name in ("bool", "int", "float", "null", "timestamp", "str", "binary", "seq", "map", "set", "omap", "pairs")
}


def unbuildable_message(node: yaml.Node, error: BaseException | None = None) -> str:
    """Why ``node`` cannot be built, in words, for a value PyYAML parsed but its constructor refused."""
    tag = _TAG_NAMES.get(node.tag, node.tag)
    if not isinstance(node, yaml.ScalarNode):
        shape = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
        return f"the tag {tag} cannot be put on {shape}"
    value, implicit = node.value, node.tag in _IMPLICIT_TAGS
    if node.tag in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
        return f"the tag {tag} cannot be put on a single value ({_shown(value)})"
    if "int-string conversion" in str(error) or "integer string conversion" in str(error):
        return (
            f"an integer written with {len(value)} characters is past Python's int-string limit of "
            f"{sys.get_int_max_str_digits()} digits (azure-ai-ml's YAML loader cannot read it either); quote it if "
            "it is text"
        )
    if node.tag == "tag:yaml.org,2002:timestamp":
        return (
            f"{_shown(value)} reads as a date or time in YAML 1.1 but is not a valid one ({error}); quote it if it is "
            "text"
        )
    hint = "; quote it if it is text" if implicit else ""
    return f"{_shown(value)} cannot be read as {tag}{hint}"


def _printable_int(loader: Any, node: yaml.ScalarNode) -> int:
    """PyYAML's int, refused where Python could not print it back: ``0x`` + 5,000 hex digits loads, then every
    ``str()`` of it (a message, a JSON dump, a schema check) raises past the int-string limit."""
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    limit = sys.get_int_max_str_digits()
    if limit and value.bit_length() > 3 * limit and abs(value) >= 10**limit:
        raise ValueError("Exceeds the limit for integer string conversion")
    return value


class _LinedLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except _BUILD_ERRORS as error:
            raise _Unbuildable(node, unbuildable_message(node, error)) from None

    def construct_lined_mapping(self, node: yaml.MappingNode) -> LinedDict:
        mapping = LinedDict()
        mapping.line = node.start_mark.line + 1
        yield mapping
        if not isinstance(node, yaml.MappingNode):
            raise _Unbuildable(node, unbuildable_message(node))
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
            except _Unbuildable as error:
                raise error.within(key_node.value if isinstance(key_node, yaml.ScalarNode) else "?") from None
            if not isinstance(key, str):
                raise YamlProblem(key_node.start_mark.line + 1, (_NOT_A_STRING,), _key_message(key, key_node))
            if key in mapping:
                first = mapping.key_lines[key]
                raise YamlProblem(
                    key_node.start_mark.line + 1,
                    (key,),
                    f"duplicate key '{key}' (first defined on line {first}; YAML keeps only the last one)",
                )
            try:
                mapping[key] = self.construct_object(value_node, deep=True)
            except _Unbuildable as error:
                raise error.within(key) from None
            mapping.key_lines[key] = key_node.start_mark.line + 1

    def construct_lined_sequence(self, node: yaml.SequenceNode) -> LinedList:
        sequence = LinedList()
        sequence.line = node.start_mark.line + 1
        yield sequence
        if not isinstance(node, yaml.SequenceNode):
            raise _Unbuildable(node, unbuildable_message(node))
        for index, item_node in enumerate(node.value):
            try:
                sequence.append(self.construct_object(item_node, deep=True))
            except _Unbuildable as error:
                raise error.within(index) from None
            sequence.item_lines.append(item_node.start_mark.line + 1)


_LinedLoader.add_constructor("tag:yaml.org,2002:map", _LinedLoader.construct_lined_mapping)
_LinedLoader.add_constructor("tag:yaml.org,2002:seq", _LinedLoader.construct_lined_sequence)
_LinedLoader.add_constructor("tag:yaml.org,2002:int", _printable_int)


_YAML_TYPES = {"int": "an int", "float": "a float", "bool": "a bool", "NoneType": "null", "date": "a date",
               "datetime": "a timestamp", "bytes": "binary"}  # fmt: skip


_NOT_A_STRING = object()  # key-path marker of a non-string key, replaced by its real path


def _key_message(key: Any, node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        shown = node.value
        return (
            f"mapping key {shown!r} is read as {_YAML_TYPES.get(type(key).__name__, 'a non-string')}, not a string "
            f"(YAML 1.1, as azure-ai-ml reads it); quote it: '{shown}'"
        )
    return "a mapping key must be a plain string, not a mapping or a list"


def _duplicate_key_path(text: str, line: int, non_string: bool = False) -> KeyPath:
    """Full key path of the duplicate (or non-string) key found on ``line`` (re-walks the node tree; only runs on
    that error)."""

    def walk(node: yaml.Node, path: KeyPath) -> KeyPath | None:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                on_line = key_node.start_mark.line + 1 == line
                if on_line and (key_node.tag != "tag:yaml.org,2002:str" if non_string else key in seen):
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


class _Unusual(Exception):
    """Something :func:`_build` leaves to the full loader: an anchor or alias, a merge key, an explicit tag, a
    duplicate or non-string key, a second document, a syntax error (whose message the full loader words)."""


_SCALAR_TAGS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp")  # fmt: skip
_STR_TAG = "tag:yaml.org,2002:str"
_IMPLICIT_TAGS = frozenset(_SCALAR_TAGS)


def _build(text: str) -> Any:
    """One pass over libyaml's events building LinedDict/LinedList/scalars, with the bounds checked as it goes:
    about twice as fast as composing nodes and then constructing them, and the same result wherever it answers
    (plain scalars resolve through the loader's own implicit resolvers and constructors). Raises _Unusual for
    what it leaves to the full loader, YamlProblem past a bound."""
    resolvers = _LinedLoader.yaml_implicit_resolvers
    wildcard = resolvers.get(None, [])
    constructors = _LinedLoader.yaml_constructors
    constructor = _SCALAR_CONSTRUCTOR
    plain_values = _PLAIN_VALUES
    scalar_event, mapping_start, sequence_start = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
    collection_end = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    no_key = _NO_KEY
    stack: list[list[Any]] = []  # per open collection: [container, pending key (mappings), the key's line]
    root: Any = no_key
    documents = nodes = 0
    max_nodes = MAX_NODES
    parser = _BaseLoader(text)
    next_event, stream_end = parser.get_event, yaml.StreamEndEvent
    while True:
        event = next_event()
        cls = event.__class__
        if cls is stream_end:
            break
        if cls is scalar_event or cls is mapping_start or cls is sequence_start:
            nodes += 1
            if nodes > max_nodes:
                raise _too_many_nodes(event.start_mark.line + 1)
        if cls is scalar_event:
            if event.anchor is not None or (event.tag is not None and event.tag != "!"):
                raise _Unusual
            value: Any = event.value
            if event.implicit[0]:
                text_value = value
                value = plain_values.get(text_value, no_key)
                if value is no_key:
                    value = text_value
                    for tag, pattern in resolvers.get(value[:1], []) + wildcard:
                        if pattern.match(value):
                            if tag not in _SCALAR_TAGS:
                                raise _Unusual  # a merge key `<<`, a `=` value
                            node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark)
                            try:
                                value = constructors[tag](constructor, node)
                            except _BUILD_ERRORS:
                                raise _Unusual from None  # the full loader names its line and key path
                            break
                    if len(plain_values) < _MAX_PLAIN_VALUES:  # immutable results: str, int, float, bool, None, dates
                        plain_values[text_value] = value
            elif "\x00" in value:  # an escape in a quoted scalar (the text itself holds none)
                raise YamlProblem(event.start_mark.line + 1, (), "a value holds a NUL character (\\0)")
        elif cls is mapping_start or cls is sequence_start:
            if event.anchor is not None or (event.tag is not None and event.tag != "!"):
                raise _Unusual
            if len(stack) >= MAX_DEPTH:
                raise YamlProblem(event.start_mark.line + 1, (), f"nested more than {MAX_DEPTH} levels deep")
            value = LinedDict() if cls is mapping_start else LinedList()
            value.line = event.start_mark.line + 1
        elif isinstance(event, collection_end):
            frame = stack.pop()
            if not stack:
                root = frame[0]
            continue
        elif cls is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Unusual
            continue
        elif cls is yaml.AliasEvent:
            raise _Unusual
        else:  # stream start and end, document end
            continue
        if stack:
            frame = stack[-1]
            container = frame[0]
            if container.__class__ is LinedList:
                container.append(value)
                container.item_lines.append(event.start_mark.line + 1)
            elif frame[1] is no_key:
                if value.__class__ is not str or value in container:
                    raise _Unusual  # a non-string or duplicate key: the full loader names it
                frame[1], frame[2] = value, event.start_mark.line + 1
            else:
                container[frame[1]] = value
                container.key_lines[frame[1]] = frame[2]
                frame[1] = no_key
        elif cls is scalar_event:
            root = value
        if cls is not scalar_event:
            stack.append([value, no_key, 0])
    return None if root is no_key else root


_NO_KEY = object()
_PLAIN_VALUES: dict[str, Any] = {}  # plain scalar text -> its value (keys and common values recur across files)
_MAX_PLAIN_VALUES = 1 << 16
_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def load_lined(text: str) -> Any:
    """Parse one YAML document into LinedDict/LinedList/scalars. Raises YamlProblem on syntax, duplicate or
    non-string keys, and past the bounds above."""
    if len(text) > MAX_BYTES:
        raise YamlProblem(1, (), f"text is {len(text)} characters; YAML is read up to {MAX_BYTES}")
    _refuse_nul(text)
    try:
        return _build(text)
    except (_Unusual, yaml.YAMLError):
        pass  # the full loader below: the same answer, or the error worded with its line and key path
    try:
        _check_bounds(text)
        return yaml.load(text, Loader=_LinedLoader)  # noqa: S506 - a SafeLoader subclass
    except YamlProblem as problem:
        if problem.key_path:
            non_string = problem.key_path == (_NOT_A_STRING,)
            found = _duplicate_key_path(text, problem.line, non_string)
            fallback = () if non_string else problem.key_path
            raise YamlProblem(problem.line, found or fallback, problem.message) from None
        raise
    except _Unbuildable as error:
        raise YamlProblem(error.node.start_mark.line + 1, tuple(error.path), error.message) from None
    except _BUILD_ERRORS as error:  # pragma: no cover - a constructor outside the lined ones; named without a path
        raise YamlProblem(1, (), f"a value cannot be built: {type(error).__name__}") from None
    except RecursionError:  # pragma: no cover - the depth bound comes first
        raise YamlProblem(1, (), f"nested more than {MAX_DEPTH} levels deep") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        what = error.problem or error.context or "malformed YAML"
        raise YamlProblem(line, (), f"YAML syntax: {what}") from None
    except yaml.YAMLError as error:
        raise YamlProblem(1, (), f"YAML syntax: {error}") from None


def load_file(path: str | Path) -> Any:
    """:func:`read_text` then :func:`load_lined` (YamlProblem for bad bytes or YAML; OSError for the caller)."""
    return load_lined(read_text(path))


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
