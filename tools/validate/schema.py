"""Layer C: validate a parsed spec against the JSON schema exported from the pinned azure-ai-ml.

``validate_against_schema(kind, data)`` returns ``[]`` for a valid spec. The fast path is ``fastjsonschema``
code compiled once per kind (lazily; its bytecode is cached under ``build/cache/schema_check``, so later
processes only unmarshal it). Only a spec the fast path rejects goes through ``jsonschema``'s Draft 7
validator, whose errors are reduced to the most specific ones: inside an ``anyOf`` the branches whose ``type``
discriminator (or JSON type) does not match are dropped and the best remaining branch is reported, so a
mistake deep in a pipeline step reads ``jobs.sft.resources.instance_count: expected integer, got string 'abc'``
rather than "is not valid under any of the given schemas".

Neither validator touches the network, and neither mutates ``data`` (``fastjsonschema`` would fill in defaults
unless told not to).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import marshal
import re
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.files import atomic_write_bytes
from tools.core.repo import active, schema_url
from tools.core.repo import kinds as catalog_kinds
from tools.validate.kind import kind_from_schema_url as from_url
from tools.validate.problem import Problem

__all__ = ["Problem", "validate_against_schema", "kinds", "schema_path", "kind_from_schema_url", "warm"]


_lock = threading.Lock()
# Keyed by (root, kind): a process that selects another repo root reads that root's schemas.
_texts: dict[tuple[Path, str], str] = {}
_fast: dict[tuple[Path, str], Callable[[Any], Any]] = {}
_slow: dict[tuple[Path, str], Any] = {}


def _key(kind: str) -> tuple[Path, str]:
    return (active().root, kind)

_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
               "object": "object", "array": "array", "null": "null"}
_MAX_VALUE_CHARS = 60
BINDING_PATTERN = r"\$\{\{\s*(\S*)\s*\}\}"  # azure-ai-ml's DataBindingStr, as the export writes it


# ---------------------------------------------------------------------------------------------- kinds and files
def kinds() -> dict[str, dict[str, Any]]:
    """``schemas/kinds.yaml`` kinds (via tools.core.repo): kind -> {file, loader, schema_class, az, url}."""
    return {kind: dict(spec, url=schema_url(kind)) for kind, spec in catalog_kinds().items()}


def kind_from_schema_url(url: str) -> str | None:
    """The kind whose published ``$schema`` URL (or file name) is ``url``; None when it is none of ours."""
    return from_url(str(url).strip())


def schema_path(kind: str) -> Path:
    try:
        return active().json_schema_dir / catalog_kinds()[kind]["file"]
    except KeyError:
        raise ValueError(f"unknown spec kind {kind!r}; expected one of {sorted(catalog_kinds())}") from None


_derived: dict[tuple[Path, Callable[[dict], Any]], Any] = {}


def derived_table(kind: str, build: Callable[[dict[str, Any]], Any], empty: Any) -> Any:
    """``build(schema)`` of ``kind``'s exported schema, once per schema file (the tables that casing and
    rules.open_keys read by property name); ``empty`` for an unknown kind or a missing or broken file, which
    layer C itself reports. Raises nothing."""
    try:
        path = schema_path(kind)
    except ValueError:
        return empty
    key = (path, build)
    with _lock:
        if key in _derived:
            return _derived[key]
    try:
        table = build(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError):
        table = empty
    with _lock:
        _derived[key] = table
    return table


def _schema_text(kind: str) -> str:
    text = _texts.get(_key(kind))
    if text is None:
        path = schema_path(kind)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{active().relative(path)}: missing; run `python -m tools schemas export`") from None
        _texts[_key(kind)] = text
    return text


# ---------------------------------------------------------------------------------------------- fast path
def _type_first(node: Any) -> Any:
    """Put ``type`` first in every ``properties`` (same schema, but fastjsonschema then rejects a wrong union
    branch on its discriminator before validating the rest of it)."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and isinstance(props.get("type"), dict):
            node["properties"] = {"type": props["type"], **{k: v for k, v in props.items() if k != "type"}}
        for value in node.values():
            _type_first(value)
    elif isinstance(node, list):
        for value in node:
            _type_first(value)
    return node


def _generate(text: str) -> str:
    """fastjsonschema source for a schema, ending with ``ENTRY = <the validate function>``."""
    import fastjsonschema  # noqa: PLC0415 - heavy library, imported when used

    code = fastjsonschema.compile_to_code(_type_first(json.loads(text)), use_default=False, detailed_exceptions=False)
    # fastjsonschema names each nested value with `"<template>".format(**locals())`, which copies every local of
    # the function on each call; the same template as an f-string reads only the names it holds
    code = _FORMAT_LOCALS.sub(lambda m: "f" + m.group(1), code)
    match = re.search(r"^def (\w+)\(", code, re.M)
    if match is None:
        raise RuntimeError("fastjsonschema generated no validate function")
    return f"{code}\n\nENTRY = {match.group(1)}\n"


_FORMAT_LOCALS = re.compile(r'("(?:[^"\\\n]|\\.)*")\.format\(\*\*locals\(\)\)')


def _compile_fast(kind: str) -> Callable[[Any], Any]:
    """The fast validator for ``kind``; its bytecode is cached on disk, keyed by schema, library and Python."""
    import fastjsonschema  # noqa: PLC0415 - heavy library, imported when used

    text = _schema_text(kind)
    digest = hashlib.sha256(f"{fastjsonschema.VERSION}\n{text}".encode()).hexdigest()[:16]
    cached = active().build_dir / "cache" / "schema_check" / f"{kind}-{digest}.{sys.implementation.cache_tag}.marshal"
    code = None
    with contextlib.suppress(OSError, EOFError, ValueError, TypeError):
        code = marshal.loads(cached.read_bytes())
    if code is None:
        code = compile(_generate(text), f"<schema {kind}>", "exec")
        with contextlib.suppress(OSError):  # read-only checkout: no cache, still correct
            atomic_write_bytes(cached, marshal.dumps(code))
    namespace: dict[str, Any] = {"__name__": f"_schema_check_{kind}"}
    exec(code, namespace)  # noqa: S102 - code generated by fastjsonschema from our own schema
    return namespace["ENTRY"]


def _fast_validator(kind: str) -> Callable[[Any], Any]:
    validator = _fast.get(_key(kind))
    if validator is None:
        with _lock:
            validator = _fast.get(_key(kind))
            if validator is None:
                try:
                    validator = _compile_fast(kind)
                except (KeyError, ValueError, SyntaxError, RecursionError):
                    # fastjsonschema 2.x cannot generate code for some `const` values (a KeyError formatting its
                    # message): that kind is checked by the precise jsonschema validator alone
                    validator = _no_fast_path
                _fast[_key(kind)] = validator
    return validator


class _NoFastPath(Exception):
    pass


def _no_fast_path(data: Any) -> Any:
    raise _NoFastPath


# ---------------------------------------------------------------------------------------------- precise path
def _slow_validator(kind: str, tagged: bool = True) -> Any:
    """The precise validator of ``kind``: Draft 7, with the union shortcut of ``_tagged_any_of`` (``tagged=False``:
    plain Draft 7, a benchmark's baseline)."""
    validator = _slow.get(_key(kind)) if tagged else None
    if validator is None:
        from jsonschema import Draft7Validator, validators  # noqa: PLC0415 - heavy library, imported when used
        from referencing import Registry  # noqa: PLC0415 - heavy library, imported when used
        from referencing.exceptions import NoSuchResource  # noqa: PLC0415 - heavy library, imported when used
        from referencing.jsonschema import DRAFT7  # noqa: PLC0415 - heavy library, imported when used

        def no_network(uri: str) -> Any:
            raise NoSuchResource(ref=uri)

        schema = json.loads(_schema_text(kind))
        registry = Registry(retrieve=no_network).with_resource(schema["$id"], DRAFT7.create_resource(schema))
        cls = validators.extend(Draft7Validator, {"anyOf": _tagged_any_of(schema)}) if tagged else Draft7Validator
        validator = cls(schema, registry=registry)
        if tagged:
            _slow[_key(kind)] = validator
    return validator


_PLAIN_BRANCH_KEYS = {"type", "properties", "required", "additionalProperties", "patternProperties", "title",
                      "description"}  # fmt: skip
_PLAIN_TAG_KEYS = {"type", "title", "description"}


def _tagged_any_of(root: dict[str, Any]) -> Callable[..., Any]:
    """jsonschema's ``anyOf``, less the work whose result ``_union_issues`` throws away. A branch that is a plain
    object schema (``type: object``, properties, required; no nested applicators) is not descended into when the
    outcome is already known: a value that is not a mapping gets only that branch's ``type`` error, and a typed
    mapping whose ``type`` its discriminator (the ``type`` property: one ``enum`` or ``const``) does not allow
    gets only the discriminator's error. That is all ``_union_issues`` reads of a branch it drops (the types and
    discriminator values it names when no branch fits), so the issues are the same as Draft 7's; a pipeline's
    ``jobs`` are no longer each checked in full against every node type of the union, nor ``${{...}}`` input
    strings against every input mapping (about 100 ms -> a few ms a pipeline with a finding)."""
    from jsonschema.exceptions import ValidationError  # noqa: PLC0415 - heavy library, imported when used

    shapes: dict[int, tuple[dict, tuple[str, Any, dict] | None] | None] = {}

    def resolve(branch: Any) -> Any:
        for _ in range(8):
            if not (isinstance(branch, dict) and set(branch) == {"$ref"} and str(branch["$ref"]).startswith("#/")):
                return branch
            node: Any = root
            for part in branch["$ref"][2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, dict) or part not in node:
                    return None
                node = node[part]
            branch = node
        return None

    def shape_of(branch: Any) -> tuple[dict, tuple[str, Any, dict] | None] | None:
        """(the plain object schema, its discriminator or None) of a branch; None when it is not that simple."""
        if id(branch) not in shapes:
            found = None
            target = resolve(branch)
            if isinstance(target, dict) and set(target) <= _PLAIN_BRANCH_KEYS and target.get("type") == "object":
                tag = (target.get("properties") or {}).get("type")
                found = (target, None)
                if isinstance(tag, dict) and tag.get("type", "string") == "string":
                    checks = set(tag) - _PLAIN_TAG_KEYS - {k for k in tag if str(k).startswith("x-")}
                    if checks == {"enum"} and isinstance(tag["enum"], list):
                        found = (target, ("enum", tag["enum"], tag))
                    elif checks == {"const"}:
                        found = (target, ("const", tag["const"], tag))
            shapes[id(branch)] = found
        return shapes[id(branch)]

    def known_error(index: int, subschema: Any, instance: Any, typed: bool) -> Any:
        shape = shape_of(subschema)
        if shape is None:
            return None
        target, tag = shape
        if not isinstance(instance, dict):
            return ValidationError(f"{instance!r} is not of type 'object'", validator="type", validator_value="object",
                                   instance=instance, schema=target, schema_path=[index, "type"])  # fmt: skip
        if typed and tag is not None:
            value = instance["type"]
            if not (value in tag[1] if tag[0] == "enum" else value == tag[1]):
                message = f"{value!r} is not one of {tag[1]!r}" if tag[0] == "enum" else f"{tag[1]!r} was expected"
                return ValidationError(message, validator=tag[0], validator_value=tag[1], instance=value,
                                       schema=tag[2], path=["type"], schema_path=[index, "properties", "type", tag[0]])
        return None

    def any_of(validator: Any, any_of: list[Any], instance: Any, schema: Any) -> Any:
        typed = isinstance(instance, dict) and isinstance(instance.get("type"), str)
        all_errors = []
        for index, subschema in enumerate(any_of):
            known = known_error(index, subschema, instance, typed)
            if known is not None:
                all_errors.append(known)
                continue
            errs = list(validator.descend(instance, subschema, schema_path=index))
            if not errs:
                return
            all_errors.extend(errs)
        yield ValidationError(f"{instance!r} is not valid under any of the given schemas", context=all_errors)

    return any_of


def warm(kind_names: Iterable[str] | None = None) -> None:
    """Compile the fast validators now (e.g. before timing), for ``kind_names`` or every kind."""
    for kind in kind_names or kinds():
        _fast_validator(kind)


def validate_against_schema(kind: str, data: Any, prepare: Callable[[Any], Any] | None = None) -> list[Problem]:
    """Issues for ``data`` (what ``yaml.safe_load`` gives) against the exported schema of ``kind``; [] if valid.

    ``prepare`` (layer C's respelling of enums, tools.validate.casing) is applied only when ``data`` as given
    does not pass: it only rewrites values towards allowed spellings, so a spec that passes as given passes
    prepared, and most specs skip its walk."""
    fast = _fast_validator(kind)
    try:
        fast(data)
        return []
    except Exception as exc:  # JsonSchemaException, or a TypeError on odd YAML (non-string keys)
        fast_error: Exception = exc
    if prepare is not None:
        data = prepare(data)
        if not isinstance(fast_error, _NoFastPath):
            try:
                fast(data)
                return []
            except Exception as exc:  # noqa: BLE001 - as above
                fast_error = exc
    if isinstance(data, dict) and not isinstance(fast_error, _NoFastPath):
        extras_only = _unknown_top_level_keys_only(kind, data, fast)
        if extras_only is not None:
            return extras_only
    issues = _precise_issues(_slow_validator(kind), data)
    if not issues and isinstance(fast_error, _NoFastPath):
        return []
    if not issues:  # the two validators disagree (e.g. a format check): keep fastjsonschema's word
        issues = [_issue_from_fast(fast_error)]
    return issues


def _unknown_top_level_keys_only(kind: str, data: dict, fast: Callable[[Any], Any]) -> list[Problem] | None:
    """The issues when unknown top-level keys are a spec's only fault (a model spec's ``isArchived``), or None.

    Draft 7 reports exactly these then: the root's ``additionalProperties`` error, one issue per unknown key; so
    when the rest of the spec passes the fast path, the precise validator's walk of the whole spec is skipped."""
    root = _strict_root(kind)
    if root is None:
        return None
    known, patterns = root
    extras = [key for key in data if key not in known and not (isinstance(key, str) and any(
        p.search(key) for p in patterns))]  # fmt: skip
    if not extras:
        return None
    try:
        unknown = set(extras)  # a set: `in` on the list was quadratic (20,000 unknown keys: seconds, 4 MiB: minutes)
        fast({key: value for key, value in data.items() if key not in unknown})
    except Exception:  # noqa: BLE001 - other faults too: the precise path words them all
        return None
    names = [name for name in known if isinstance(name, str)]
    issues = [Problem((key,), f"unknown key {_short(key)}{_did_you_mean(key, names) if i < MAX_HINTS else ''}")
              for i, key in enumerate(extras)]  # fmt: skip
    return sorted(issues, key=lambda issue: (tuple(str(part) for part in issue.key_path), issue.message))


def _strict_root(kind: str) -> tuple[dict, list[re.Pattern]] | None:
    """(properties, patternProperties) of ``kind``'s root when it is one plain object schema that rejects unknown
    keys (no union, no other applicator at the top); None otherwise."""
    return derived_table(kind, _strict_root_of, None)


def _strict_root_of(schema: dict[str, Any]) -> tuple[dict, list[re.Pattern]] | None:
    ref = schema.get("$ref")
    if not (isinstance(ref, str) and ref.startswith("#/definitions/")) or schema.get("anyOf"):
        return None
    root = schema.get("definitions", {}).get(ref.rsplit("/", 1)[-1])
    plain = {"type", "properties", "required", "additionalProperties", "patternProperties", "description"}
    if not isinstance(root, dict) or root.get("additionalProperties") is not False or not set(root) <= plain:
        return None
    return root.get("properties") or {}, [re.compile(p) for p in root.get("patternProperties") or {}]


def _issue_from_fast(error: Exception) -> Problem:
    path: tuple[str | int, ...] = ()
    message = str(error)
    raw = getattr(error, "path", None)
    if isinstance(raw, list) and raw and raw[0] == "data":
        path = tuple(raw[1:])
    name = getattr(error, "name", None)
    if isinstance(name, str) and message.startswith(name):
        message = message[len(name):].strip()
    return Problem(path, message or type(error).__name__)


def _precise_issues(validator: Any, data: Any) -> list[Problem]:
    seen: set[Problem] = set()
    out: list[Problem] = []
    for error in validator.iter_errors(data):
        for issue in _issues(error):
            if issue not in seen:
                seen.add(issue)
                out.append(issue)
    out.sort(key=lambda issue: (tuple(str(part) for part in issue.key_path), issue.message))
    return out


def _path(error: Any) -> tuple[str | int, ...]:
    return tuple(error.absolute_path)


def _issues(error: Any) -> list[Problem]:
    """The most specific issues for one jsonschema error."""
    path = _path(error)
    validator = error.validator
    if validator in ("anyOf", "oneOf") and error.context:
        return _union_issues(error)
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        extras = _extra_keys(error.instance, error.schema)
        if extras:
            known = [k for k in error.schema.get("properties", {}) if isinstance(k, str)]
            return [Problem((*path, key), f"unknown key {_short(key)}{_did_you_mean(key, known) if i < MAX_HINTS else ''}")  # noqa: E501
                    for i, key in enumerate(extras)]  # fmt: skip
    if validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            return [Problem((*path, name), f"missing required key {_short(name)}") for name in missing]
    return [Problem(path, _message(error))]


MAX_HINTS = 1000  # unknown keys of one mapping that get a "did you mean" (difflib: ~0.3 ms each); the rest none


def _did_you_mean(key: Any, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.8) if isinstance(key, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _extra_keys(instance: dict, schema: dict) -> list[Any]:
    properties = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [key for key in instance
            if key not in properties and not (isinstance(key, str) and any(p.search(key) for p in patterns))]


def _union_issues(error: Any) -> list[Problem]:
    """Pick the branch of an ``anyOf`` the value was meant for and report its errors."""
    base = _path(error)
    instance = error.instance
    has_tag = isinstance(instance, dict) and "type" in instance
    wrong_type: list[str] = []
    discriminators: list[Any] = []
    alive: list[list[Any]] = []
    for errors in _branches(error, base):
        type_errors = [e for e in errors if _path(e) == base and e.validator == "type"]
        if type_errors:
            for e in type_errors:
                wrong_type.extend(_as_list(e.validator_value))
            continue
        tag = [e for e in errors if _path(e) == (*base, "type") and e.validator in ("enum", "const")]
        if tag:
            for e in tag:
                discriminators.extend(_as_list(e.validator_value))
            continue
        if has_tag and any(
            _path(e) == base and e.validator == "additionalProperties" and "type" in _extra_keys(e.instance, e.schema)
            for e in errors
        ):
            continue  # a branch without a `type` key at all: not the one a typed value was meant for
        if isinstance(instance, str) and "${{" not in instance and all(
            e.validator == "pattern" and e.validator_value == BINDING_PATTERN for e in errors
        ):
            continue  # a pipeline step's `${{...}}` alternative (export.py): not what a plain string was meant as
        alive.append(errors)

    if not alive:
        if discriminators and has_tag:
            got = _short(instance["type"])
            return [Problem((*base, "type"), f"expected one of [{_join(discriminators)}], got {got}")]
        if wrong_type:
            return [Problem(base, f"expected {_type_names(wrong_type)}, got {_describe(instance)}")]
        return [Problem(base, _message(error))]

    def score(errors: list[Any]) -> tuple[int, int, int]:
        shallow = sum(1 for e in errors if _path(e) == base and e.validator in ("required", "pattern", "enum"))
        depth = max(len(_path(e)) for e in errors)
        return (shallow, -depth, len(errors))

    alive.sort(key=score)
    best = alive[0]
    # A plain value (string, number) that fits no alternative: one line naming the alternatives.
    if not isinstance(instance, (dict, list)) and all(_path(e) == base for e in best):
        forms = []
        for errors in alive:
            for e in errors:
                if _path(e) == base:
                    forms.append(_expectation(e))
        unique = list(dict.fromkeys(f for f in forms if f))
        if len(unique) > 1:
            return [Problem(base, f"{_short(instance)} matches none of: {'; '.join(unique)}")]
    out: list[Problem] = []
    for e in best:
        out.extend(_issues(e))
    return out


def _branches(error: Any, base: tuple[str | int, ...]) -> list[list[Any]]:
    """The errors of each ``anyOf`` branch, with a nested ``anyOf`` at the same location flattened into it."""
    groups: dict[int, list[Any]] = {}
    for sub in error.context:
        index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        groups.setdefault(index, []).append(sub)
    out: list[list[Any]] = []
    for errors in groups.values():
        if len(errors) == 1 and errors[0].validator in ("anyOf", "oneOf") and errors[0].context \
                and _path(errors[0]) == base:
            out.extend(_branches(errors[0], base))
        else:
            out.append(errors)
    return out


def _expectation(error: Any) -> str:
    if error.validator == "pattern":
        return f"pattern {error.validator_value!r}"
    if error.validator == "enum":
        return f"one of [{_join(error.validator_value)}]"
    if error.validator == "const":
        return f"{_short(error.validator_value)}"
    if error.validator == "type":
        return _type_names(_as_list(error.validator_value))
    return error.message


def _message(error: Any) -> str:
    validator, expected, instance = error.validator, error.validator_value, error.instance
    if validator == "type":
        return f"expected {_type_names(_as_list(expected))}, got {_describe(instance)}"
    if validator == "enum":
        return f"expected one of [{_join(expected)}], got {_short(instance)}"
    if validator == "const":
        return f"expected {_short(expected)}, got {_short(instance)}"
    if validator == "pattern":
        return f"{_short(instance)} does not match pattern {expected!r}"
    if validator in ("anyOf", "oneOf"):
        return f"{_describe(instance)} matches none of the allowed forms"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _join(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(values))


def _type_names(types: list[str]) -> str:
    names = list(dict.fromkeys(_JSON_TYPES.get(t, str(t)) for t in types))
    if len(names) > 1 and "null" in names:
        names.remove("null")
    return " or ".join(names)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__  # e.g. datetime.date from an unquoted YAML date


def _describe(value: Any) -> str:
    kind = _json_type(value)
    if kind in ("object", "array", "null"):
        return kind
    return f"{kind} {_short(value)}"


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."
