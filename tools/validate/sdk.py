"""Layer B: load a spec with the azure-ai-ml loader that ``az ml`` uses for its kind, offline, and report what it
rejects as one-line issues with key paths.

``check_with_sdk(kind, text, origin)`` loads ``text`` from memory with ``relative_origin=origin`` (the spec's
intended path, so ``code:``, ``conda_file:`` and local ``component:`` paths resolve from there), then runs the
entity's own ``_validate()`` where it has one (pipelines, components). Unknown-field *warnings* of that
validation become issues too. The SDK's errors come in several shapes (marshmallow ``messages`` dicts,
``Validation for XSchema failed:`` blocks wrapping JSON of either kind, reprs of union alternatives,
``ValidationException`` one-liners); they are flattened into key paths and short messages, never tracebacks,
with the SDK's links and boilerplate stripped.

``azure.ai.ml`` is imported lazily, once per process (about 2 s), with its deprecation warnings and experimental
notices silenced.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import re
import threading
import types
import warnings
from pathlib import Path
from typing import Any

import yaml

from tools.core.repo import kinds
from tools.validate.problem import Problem

__all__ = ["Problem", "check_with_sdk", "endpoint_name_problem", "import_sdk", "loader_name"]

_MAX_MESSAGE = 240
_lock = threading.Lock()
_sdk: Any = None
_BINDING_NOISE = re.compile(r"^Value passed is not a (data|node) binding string: .*$")
_HEADER = re.compile(r"^\s*Validation for \w+ failed:\s*", re.S)


def import_sdk() -> Any:
    """Import ``azure.ai.ml`` once, quietly; return the module."""
    global _sdk
    if _sdk is None:
        with _lock:
            if _sdk is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    import azure.ai.ml as sdk  # noqa: PLC0415 - heavy library, imported when used
                # experimental-class notices, "Warnings: [...]" echoes of unknown fields (reported as issues instead)
                logging.getLogger("azure.ai.ml").setLevel(logging.ERROR)
                _speed_up(sdk)
                _sdk = sdk
    return _sdk


def _speed_up(sdk: Any) -> None:
    """Patches that change no verdict, only the time the SDK takes (about 1 s a spec with findings, 0.1 s a
    spec without, down to a few ms; pipelines about half their time, ``_reuse_validation_schemas``):

    - ``MutableValidationResult.resolve_location_for_diagnostics`` re-parses the file with strictyaml to attach
      file/line locations to each diagnostic; this module never reads them (lines come from our own parse).
    - ``azure.ai.ml._utils.utils`` parses YAML with PyYAML's pure-Python ``safe_load``; libyaml's ``CSafeLoader``
      is the same YAML 1.1 loader in C (PyYAML's own wheels ship both), so it reads every file identically.
    """
    from azure.ai.ml._utils import utils  # noqa: PLC0415 - heavy library, imported when used
    from azure.ai.ml.entities._validation.core import MutableValidationResult  # noqa: PLC0415 - heavy library, imported when used

    MutableValidationResult.resolve_location_for_diagnostics = lambda self, *args, **kwargs: None
    _reuse_validation_schemas()
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None and isinstance(getattr(utils, "yaml", None), types.ModuleType):
        fast = types.ModuleType("yaml")
        fast.__dict__.update(yaml.__dict__)
        fast.safe_load = lambda stream: yaml.load(stream, Loader=loader)  # noqa: S506 - the safe loader in C
        utils.yaml = fast


_MAX_VALIDATION_SCHEMAS = 512


def _reuse_validation_schemas() -> None:
    """``SchemaValidatableMixin._schema_for_validation`` builds a new marshmallow schema on every use: twice per
    entity per ``_validate()`` (dump, then validate), for every step of a pipeline. A step's schema is the costly
    kind (``BaseNodeSchema.__init__`` patches every field for ``${{...}}`` bindings, nested schemas included):
    most of a pipeline's validation time. Its only input is the context, the entity's base path (the SDK itself
    notes that nested schemas keep the context of their first use), and a marshmallow schema keeps no state
    between ``dump``/``validate`` calls, so one instance per (entity class, context) gives the same verdicts;
    the corpus checks this (the same findings with and without)."""
    from azure.ai.ml.entities._validation.schema import SchemaValidatableMixin  # noqa: PLC0415 - heavy library, imported when used

    made: dict[tuple, Any] = {}

    def schema_for_validation(self: Any) -> Any:
        context = self._default_context()
        try:
            key = (type(self), tuple(sorted((str(k), str(v)) for k, v in context.items())))
        except (AttributeError, TypeError):  # a context that is not a plain mapping: build as the SDK does
            return self._create_schema_for_validation(context=context)
        schema = made.get(key)
        if schema is None:
            if len(made) >= _MAX_VALIDATION_SCHEMAS:
                made.clear()
            schema = made[key] = self._create_schema_for_validation(context=context)
        return schema

    global _sdk_schema_for_validation
    _sdk_schema_for_validation = SchemaValidatableMixin._schema_for_validation
    SchemaValidatableMixin._schema_for_validation = property(schema_for_validation)


_sdk_schema_for_validation: Any = None  # the SDK's own property (tests compare verdicts with it)


def check_with_sdk(kind: str, text: str, origin: Path) -> list[Problem]:
    """Issues the azure-ai-ml loader (and ``_validate()``) of ``kind`` finds in ``text``; [] when it loads clean."""
    name = loader_name(kind)
    import_sdk()
    from azure.ai.ml.entities import _load_functions  # noqa: PLC0415 - heavy library, imported when used
    from azure.ai.ml.entities._validation import PathAwareSchemaValidatableMixin  # noqa: PLC0415 - heavy library, imported when used
    from azure.ai.ml.exceptions import MlException  # noqa: PLC0415 - heavy library, imported when used
    from marshmallow.exceptions import ValidationError  # noqa: PLC0415 - heavy library, imported when used

    loader = getattr(_load_functions, name)  # every loader, also those not exported at the top level
    data = _safe_parse(text)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            entity = loader(io.StringIO(text), relative_origin=str(origin))
            try:
                result = entity._validate() if isinstance(entity, PathAwareSchemaValidatableMixin) else None
            except NotImplementedError:
                # A monitor schedule has no validation schema; azure-ai-ml's create never asks it for one
                # (ScheduleOperations.begin_create_or_update calls _validate() for a JobSchedule only).
                result = None
    except ValidationError as error:
        return _finish(_from_messages(error.messages, ()), data, origin)
    except NotImplementedError as error:
        # load_schedule of an invalid monitor schedule: the SDK's error decoration asks for a validation schema
        # MonitorSchedule does not have, while handling the ValidationError that holds the real messages.
        if isinstance(error.__context__, ValidationError):
            return _finish(_from_messages(error.__context__.messages, ()), data, origin)
        raise
    except MlException as error:  # ValidationException and friends
        return _finish(_from_text(_exception_text(error), ()), data, origin)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        # the SDK occasionally fails on odd input with a plain exception: still one line, never a traceback
        return _finish([Problem((), f"azure-ai-ml could not load it: {type(error).__name__}: {error}")], data, origin)
    if result is None:
        return []
    issues = [Problem(_parse_yaml_path(d.yaml_path), _clean(d.message or "")) for d in result._errors]
    issues += [Problem(_parse_yaml_path(d.yaml_path), _clean(d.message or "")) for d in result._warnings]
    return _finish(issues, data, origin)


def loader_name(kind: str) -> str:
    """The azure-ai-ml load function of ``kind`` (schemas/kinds.yaml ``loader``)."""
    try:
        return kinds()[kind]["loader"]
    except KeyError:
        raise ValueError(f"unknown spec kind {kind!r}; expected one of {sorted(kinds())}") from None


def endpoint_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid online endpoint/deployment name (Azure's rules via the SDK helper), or None."""
    import_sdk()
    from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name  # noqa: PLC0415 - heavy library, imported when used
    from azure.ai.ml.exceptions import MlException  # noqa: PLC0415 - heavy library, imported when used

    try:
        validate_endpoint_or_deployment_name(name)
    except MlException as error:
        return _clean(_exception_text(error))
    return None


# ------------------------------------------------------------------------------------------- flattening
def _exception_text(error: Any) -> str:
    return str(getattr(error, "message", None) or error)


def _from_messages(messages: Any, path: tuple[str | int, ...]) -> list[Problem]:
    """marshmallow ``messages``: nested dicts keyed by field (or index), lists of strings or of alternatives."""
    if isinstance(messages, dict):
        out: list[Problem] = []
        for key, value in messages.items():
            if key in (None, "_schema"):
                out.extend(_from_messages(value, path))
            else:
                out.extend(_from_messages(value, (*path, _key(key))))
        return out
    if isinstance(messages, (list, tuple)):
        if messages and all(isinstance(m, str) for m in messages):
            out = []
            for text in messages:
                out.extend(_from_text(text, path))
            return _merge_same_path(out)
        # union alternatives: one entry per candidate field the SDK tried
        return _pick_alternative([_from_messages(m, path) for m in messages], path)
    if isinstance(messages, str):
        return _from_text(messages, path)
    return [Problem(path, _clean(str(messages)))]


def _from_text(text: str, path: tuple[str | int, ...]) -> list[Problem]:
    """One SDK message string; it may wrap a JSON block or a repr of union alternatives."""
    header = _HEADER.match(text)
    if header:
        try:
            block, _ = json.JSONDecoder().raw_decode(text, header.end())
        except ValueError:
            block = None
        if isinstance(block, dict) and "errors" in block and "result" in block:
            out: list[Problem] = []
            for entry in block.get("errors") or []:
                sub = _parse_yaml_path(entry.get("path"))
                out.extend(_from_text(str(entry.get("message", "")), (*path, *sub)))
            return out
        if isinstance(block, (dict, list)):
            return _from_messages(block, path)
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        parts = _split_alternatives(stripped)
        parsed = []
        for part in parts:
            try:
                parsed.append(ast.literal_eval(part))
            except (ValueError, SyntaxError):
                parsed = []
                break
        if parsed:
            return _pick_alternative([_from_messages(p, path) for p in parsed], path)
    return [Problem(path, _merge_messages([stripped]))]


def _split_alternatives(text: str) -> list[str]:
    """Split ``"{...}; {...}"`` at top-level ``; `` separators, respecting brackets and quotes."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == ";" and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _pick_alternative(alternatives: list[list[Problem]], base: tuple[str | int, ...]) -> list[Problem]:
    """The union candidate the value was meant for (the SDK reports every candidate field it tried)."""
    candidates = [alt for alt in alternatives if alt]
    if not candidates:
        return []
    if all(len(alt) == 1 and alt[0].key_path == base for alt in candidates):
        return [Problem(base, _merge_messages([alt[0].message for alt in candidates]))]
    tag = (*base, "type")

    def wrong_shape(alt: list[Problem]) -> bool:  # a scalar field tried on a mapping, or a schema without `type`
        return any((i.key_path == base and all(_SCALAR_MISMATCH.match(p) for p in i.message.split("; ")))
                   or (i.key_path == tag and i.message.startswith("unknown key")) for i in alt)

    def wrong_tag(alt: list[Problem]) -> bool:
        return any(i.key_path == tag and _ENUM.match(i.message) for i in alt)

    keep = [alt for alt in candidates if not wrong_shape(alt)] or candidates
    if all(wrong_tag(alt) for alt in keep):
        allowed: list[str] = []
        got = ""
        for alt in keep:
            for issue in alt:
                match = _ENUM.match(issue.message) if issue.key_path == tag else None
                if match:
                    allowed += [v.strip().strip("'\"") for v in match.group(1).split(",")]
                    got = match.group(2)
        return [Problem(tag, f"expected one of [{', '.join(dict.fromkeys(allowed))}], got {got}")]

    def score(alt: list[Problem]) -> tuple[int, int, int]:
        return (int(wrong_tag(alt)), len(alt), -max(len(i.key_path) for i in alt))

    return min(keep, key=score)


def _merge_messages(messages: list[str]) -> str:
    pieces = [p.strip() for m in messages for p in m.split("; ") if p.strip()]
    pieces = [p for p in pieces if not _BINDING_NOISE.match(p)] or pieces
    files = [p for p in pieces if "No such file or directory" in p or "Can't find" in p]
    return _clean("; ".join(dict.fromkeys(files or pieces)))


def _merge_same_path(issues: list[Problem]) -> list[Problem]:
    merged: dict[tuple, list[str]] = {}
    for issue in issues:
        merged.setdefault(issue.key_path, [])
        if issue.message not in merged[issue.key_path]:
            merged[issue.key_path].append(issue.message)
    return [Problem(path, _clean("; ".join(messages))) for path, messages in merged.items()]


def _key(key: Any) -> str | int:
    if isinstance(key, int):
        return key
    text = str(key)
    return int(text) if text.isdigit() else text


def _parse_yaml_path(path: Any) -> tuple[str | int, ...]:
    """``jobs.x.inputs.y`` / ``a[0].b`` / ``*`` -> key path."""
    if not path or path in ("*", "$"):
        return ()
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", str(path)):
        out.append(int(part[1:-1]) if part.startswith("[") else _key(part))
    return tuple(out)


_SCALAR_MISMATCH = re.compile(r"^(expected (integer|number|string|boolean|url)|Invalid input type\.?)$")
_ENUM = re.compile(r"^expected one of \[(.*)\], got (.*)$")
_REPLACEMENTS = (
    (re.compile(r"Value (.+?) passed is not in set \[(.*?)\]"),
     lambda m: f"expected one of [{m.group(2).replace(chr(39), '')}], got {m.group(1)}"),
    (re.compile(r"^Must be one of: (.*)\.$"), r"expected one of [\1]"),
    (re.compile(r"In order to specify an existing \w+, please provide the correct registry path prefixed with "
                r"'azureml://':?"), "not a registry path 'azureml://registries/...'"),
    (re.compile(r"In order to specify an existing \w+, please provide either of the following prefixed with "
                r"'azureml:'.*?can be referenced as 'azureml:my-env:1'"),
     "not an 'azureml:<name>:<version>' reference"),
    (re.compile(r"In order to specify a git path, please provide the correct path prefixed with 'git\+"),
     "not a 'git+' path"),
    (re.compile(r"^Unknown field\.?$"), "unknown key"),
    (re.compile(r"^Missing data for required field\.?$"), "missing required key"),
    (re.compile(r"^Not a valid (\w+)\.$"), r"expected \1"),
    (re.compile(r"^Field may not be null\.$"), "may not be null"),
)


def _clean(message: str) -> str:
    """One short line: SDK links and boilerplate dropped, whitespace collapsed."""
    text = message
    markers = ("\n\n If you are trying", "\nVisit this link", "\nThe easiest way", " If you are trying to configure")
    for marker in markers:
        cut = text.find(marker)
        if cut > 0:
            text = text[:cut]
    text = re.sub(r"\s+", " ", text).strip()
    for pattern, replacement in _REPLACEMENTS:
        text = pattern.sub(replacement, text)
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3].rstrip() + "..."
    return text or "rejected by azure-ai-ml"


def _finish(issues: list[Problem], data: Any, origin: Path) -> list[Problem]:
    """Name unknown keys, find a key path for path-less messages, shorten absolute paths, dedupe, sort."""
    base = str(Path(origin).resolve().parent)
    display_base = str(Path(origin).parent)
    out: list[Problem] = []
    seen: set[Problem] = set()
    for issue in issues:
        message = issue.message.replace(base + "/", "" if display_base == "." else display_base + "/")
        path = _through_data(issue.key_path, data)
        if message == "unknown key" and path:
            message = f"unknown key {path[-1]!r}"
        elif message == "missing required key" and path:
            message = f"missing required key {path[-1]!r}"
        if not path:
            path = _locate(data, message)
        fixed = Problem(path, message)
        if fixed not in seen:
            seen.add(fixed)
            out.append(fixed)
    return sorted(out, key=lambda i: (tuple(str(p) for p in i.key_path), i.message))


def _through_data(path: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """``path`` less the ``value``/``key`` segments marshmallow's ``Dict`` field adds to its errors
    (``jobs.<step>.value.resources...``), where the spec has no such key: the path then names what is in the file."""
    out: list[str | int] = []
    node = data
    for part in path:
        if isinstance(node, dict) and part in ("value", "key") and part not in node and out:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _safe_parse(text: str) -> Any:
    try:  # libyaml's safe loader: the same YAML 1.1 reading as safe_load, about 10x faster (see _speed_up)
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError:
        return None


def _locate(data: Any, message: str) -> tuple[str | int, ...]:
    """The key path of the longest string value that the message quotes (e.g. a bad ``type:`` or missing file)."""
    best: tuple[int, tuple[str | int, ...]] = (0, ())

    def walk(node: Any, path: tuple[str | int, ...]) -> None:
        nonlocal best
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))
        elif isinstance(node, str) and len(node) >= 3 and len(node) > best[0] and path:
            probe = node[2:] if node.startswith("./") else node
            if re.search(rf"(?<![\w-]){re.escape(probe)}(?![\w-])", message):
                best = (len(node), path)

    walk(data, ())
    return best[1]
