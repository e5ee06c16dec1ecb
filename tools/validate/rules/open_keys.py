"""Near-miss keys where azure-ai-ml takes any key: a typo of a declared setting that the SDK passes through unchecked.

Some schemas of the SDK keep unknown keys instead of refusing them (marshmallow ``unknown = INCLUDE``: a component's
``resources`` (``ComponentResourceSchema``), a pipeline step (``BaseNodeSchema``)); the exported schemas say so with
``additionalProperties: true``, and neither layer B nor C can object. A key there that is not declared, is no key any
schema of the kind declares, and is a near-miss of a key declared beside it (``instance_coutn`` for
``instance_count``) is a typo: the file loads, the service gets the misspelt key, and the setting it meant never
takes effect (the component runs on one instance). Any other extra key is left alone (no false alarm on what the
SDK deliberately lets through).

Which mappings are open is read from ``schemas/azureml/`` by property name, as tools.validate.casing reads enums: a
key path is matched by the name of its parent key, not by walking data and schema together through every union.
"""

from __future__ import annotations

import difflib
from typing import Any

from tools.validate.document import Spec
from tools.validate.rules.support import Emit, RuleContext
from tools.validate.schema import derived_table

CUTOFF = 0.85  # difflib ratio: one swapped, missing or doubled letter in a word of 7 or more


def _open_targets(node: Any, definitions: dict[str, Any], seen: set[str]) -> list[dict]:
    """The open object schemas a property's schema leads to (through $ref, anyOf, items)."""
    out: list[dict] = []
    if not isinstance(node, dict):
        return out
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return out
        seen = {*seen, name}
        target = definitions.get(name)
        if isinstance(target, dict):
            if target.get("additionalProperties") is True and target.get("properties"):
                out.append(target)
            out += _open_targets({k: v for k, v in target.items() if k in ("anyOf", "items")}, definitions, seen)
    for branch in node.get("anyOf") or []:
        out += _open_targets(branch, definitions, seen)
    if isinstance(node.get("items"), dict):
        out += _open_targets(node["items"], definitions, seen)
    return out


def table(schema: dict[str, Any]) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """(parent key name -> the keys declared by the open schemas under it, every key the schema declares)."""
    definitions = schema.get("definitions") or {}
    open_by_name: dict[str, set[str]] = {}
    known: set[str] = set()
    for body in definitions.values():
        for name, sub in (body.get("properties") or {}).items() if isinstance(body, dict) else []:
            known.add(name)
            for target in _open_targets(sub, definitions, set()):
                open_by_name.setdefault(name, set()).update(target["properties"])
    return {name: frozenset(keys) for name, keys in open_by_name.items()}, frozenset(known)


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    open_by_name, known = derived_table(spec.kind or "", table, ({}, frozenset()))
    if not any(spec.may_hold(name) for name in open_by_name):  # no open mapping's key in the file
        return

    def visit(node: Any, path: tuple, name: str | None) -> None:
        if isinstance(node, dict):
            declared = open_by_name.get(name) if name else None
            for key, value in node.items():
                if declared and isinstance(key, str) and key not in declared and key not in known:
                    close = difflib.get_close_matches(key, sorted(declared), n=1, cutoff=CUTOFF)
                    if close:
                        emit((*path, key), f"unknown key {key!r} (did you mean {close[0]!r}?): azure-ai-ml passes "
                             f"unknown keys here through unchecked, so {close[0]!r} is never set", rule="open-key")
                visit(value, (*path, key), key if isinstance(key, str) else None)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, (*path, index), name)  # an item of a list under a name is matched by that name

    visit(spec.data, (), None)
