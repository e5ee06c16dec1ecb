"""Which Azure ML spec kind a file is, from the facts in ``schemas/kinds.yaml`` (the one source): its ``$schema``
line in every published form (``https://azuremlschemas.azureedge.net/latest/<file>``, the older
``azuremlschemasprod`` host, the AutoML preview blob, ``http://azureml/sdk-2-0/<Name>.json``), or, without one,
its ``type:`` and the keys that tell kinds sharing a type apart. Prompt flow and other non-``az ml`` files are
recognised as such (a reason to skip them, never an error)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tools.core.repo import active, kinds, kinds_table


@dataclass(frozen=True)
class SchemaLine:
    """What a ``$schema`` value says: a kind (or candidates), a reason to skip the file, or nothing we know."""

    kinds: tuple[str, ...] = ()  # candidate kinds (one for a file URL; an sdk-2-0 name may stand for several)
    skip: str | None = None  # not an az ml spec: why
    known_prefix: bool = True  # a published URL form (False: a known file name on an unknown host)


def _fold(name: str) -> str:
    return name.lower().removesuffix(".json").removesuffix(".schema")


def read_schema_line(url: str) -> SchemaLine:
    """What ``url`` says (remembered per repo root: a run reads the same few URLs hundreds of times)."""
    key = (active().root, url)
    line = _LINES.get(key)
    if line is None:
        line = _LINES[key] = _read_schema_line(url)
    return line


_LINES: dict[tuple[Any, str], SchemaLine] = {}


def _read_schema_line(url: str) -> SchemaLine:
    table = kinds_table()
    url = url.strip()
    name = url.rstrip("/").rsplit("/", 1)[-1]
    for skip_name, reason in (table.get("not_azureml") or {}).items():
        if _fold(skip_name) == _fold(name) and ("promptflow" in url or _fold(name) not in _files()):
            return SchemaLine(skip=reason)
    sdk_prefix = table.get("sdk_name_prefix", "http://azureml/sdk-2-0/")
    if url.lower().startswith(sdk_prefix.lower()):
        wanted = _fold(name)
        found = tuple(k for k, f in kinds().items() if wanted in {_fold(n) for n in f.get("sdk_names") or []})
        return SchemaLine(kinds=found)
    kind = _files().get(_fold(name))
    if kind is None:
        return SchemaLine()
    prefixes = table.get("schema_url_prefixes") or [table["schema_base_url"]]
    return SchemaLine(kinds=(kind,), known_prefix=any(url.lower().startswith(p.lower()) for p in prefixes))


def _files() -> dict[str, str]:
    return {_fold(facts["file"]): kind for kind, facts in kinds().items()}


def kind_from_schema_url(url: str) -> str | None:
    """The one kind a ``$schema`` URL names, or None."""
    line = read_schema_line(str(url))
    return line.kinds[0] if len(line.kinds) == 1 else None


def spec_type(data: dict[str, Any]) -> str | None:
    value = data.get("type")
    return value.lower() if isinstance(value, str) else None


def _shape(data: dict[str, Any]) -> tuple[str | None, frozenset]:
    """All that infer_kind and mismatch read of a spec: its ``type:`` and its top-level keys."""
    return spec_type(data), frozenset(data)


def infer_kind(data: dict[str, Any], among: tuple[str, ...] | None = None) -> str | None:
    """The kind a spec's content looks like, independent of its ``$schema`` line: the kinds whose ``types`` hold
    its ``type:`` (every kind when it has none or none matches), the one with the most of its ``keys`` present
    (the first listed wins a tie); an untyped spec needs at least one of its kind's keys. Remembered by the
    spec's shape (``_shape``) per repo root: a corpus has a few dozen shapes over hundreds of files."""
    key = (active().root, "infer", among, _shape(data))
    if key not in _MEMO:
        _MEMO[key] = _infer_kind(data, among)
    return _MEMO[key]


_MEMO: dict[tuple, Any] = {}


def _infer_kind(data: dict[str, Any], among: tuple[str, ...] | None) -> str | None:
    table = kinds()
    names = list(among) if among else list(table)
    typed = spec_type(data)
    candidates = [k for k in names if typed and typed in (table[k].get("types") or [])]
    if candidates and not among:  # an untyped kind of the same loader, named by its keys, beats a type whose kind
        # has none of them (a data import is `type: mltable` with a `source:`)
        loaders = {table[c]["loader"] for c in candidates}
        candidates += [k for k in names if not table[k].get("types") and table[k]["loader"] in loaders
                       and _score(table[k], data) > max(_score(table[c], data) for c in candidates)]
    if not candidates and (among or not typed):
        candidates = names
        if not among:  # untyped: a kind is only named by its keys
            candidates = [k for k in names if _score(table[k], data)
                          and (not table[k].get("types") or table[k].get("type_optional"))]
    if not candidates:
        return None
    best = max(_score(table[k], data) for k in candidates)
    return next(k for k in candidates if _score(table[k], data) == best)


def _score(facts: dict[str, Any], data: dict[str, Any]) -> int:
    return sum(key in data for key in facts.get("keys") or [])


def mismatch(declared: str, data: dict[str, Any]) -> str | None:
    """The kind the content is when it cannot be ``declared`` (``type:`` outside the kind's types, or the content
    is plainly another command's kind); None when it may be (remembered as infer_kind is)."""
    key = (active().root, "mismatch", declared, _shape(data))
    if key not in _MEMO:
        _MEMO[key] = _mismatch(declared, data)
    return _MEMO[key]


def _mismatch(declared: str, data: dict[str, Any]) -> str | None:
    facts = kinds()[declared]
    typed = spec_type(data)
    types = facts.get("types") or []
    if typed and types:
        if typed in types:
            return None
        siblings = tuple(k for k, f in kinds().items() if f["loader"] == facts["loader"])
        same_loader = [k for k in siblings if typed in (kinds()[k].get("types") or [])]
        inferred = infer_kind(data)
        if same_loader and (inferred is None or kinds()[inferred]["loader"] == facts["loader"]):
            return same_loader[0]
        return inferred or f"type: {typed}"
    inferred = infer_kind(data)
    if inferred and inferred != declared and kinds()[inferred]["az"] != facts["az"]:
        inferred_types = kinds()[inferred].get("types") or []
        if (not typed or typed in inferred_types) and not _fits(declared, data):
            return inferred
    return None


def _fits(kind: str, data: dict[str, Any]) -> bool:
    """Every top-level key of ``data`` is a field of ``kind`` (its exported schema's roots): then the content may
    be that kind, whatever other kind shares its keys (a batch endpoint's ``auth_mode``, a managed online
    deployment without ``type:``, which Azure defaults to ``managed``)."""
    fields = _root_fields(kind)
    return fields is not None and all(key in fields for key in data)


_ROOTS: dict[tuple[str, str], frozenset[str] | None] = {}


def _root_fields(kind: str) -> frozenset[str] | None:

    key = (str(active().root), kind)
    if key not in _ROOTS:
        try:
            schema = json.loads((active().json_schema_dir / kinds()[kind]["file"]).read_text(encoding="utf-8"))
            refs = [schema] + list(schema.get("anyOf") or [])
            names = [r["$ref"].rsplit("/", 1)[-1] for r in refs if isinstance(r.get("$ref"), str)]
            _ROOTS[key] = frozenset(k for n in names for k in schema["definitions"][n].get("properties") or {})
        except (OSError, ValueError, KeyError, AttributeError):
            _ROOTS[key] = None
    return _ROOTS[key]
