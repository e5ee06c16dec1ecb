"""How azure-ai-ml spells enum values it converts before comparing, so that layer C accepts what the SDK accepts.

The SDK's ``StringTransformedEnum`` (``azure/ai/ml/_schema/core/fields.py``) applies a *casing transform* to both
the allowed values and the given value, and compares the results: ``task: chat_completion`` in a fine-tuning job
is ``snake_to_camel``'d to ``chatCompletion`` (``_schema/_finetuning/finetuning_vertical.py``), ``tier:
LowPriority`` on a cluster is ``camel_to_snake``'d to ``low_priority`` (``_schema/compute/aml_compute.py``), and the
default transform lower-cases (``auth_mode: Key``). A JSON schema ``enum`` cannot say "after this transform", so:

- at export (``tools.schemas.export``), an enum field with a transform gets ``"x-azureml-casing": <name>``
  beside its ``enum`` of transformed values (``classify`` names the SDK function; an unknown one fails the export);
- before layer C (``tools.validate.layers.layer_c``), ``to_sdk_spelling`` rewrites each string value that is not
  already an allowed spelling into what the SDK would compare, where that is allowed; the key paths are unchanged,
  so a value the SDK rejects still gets C's "expected one of [...]" on its key.

The replicas below are the SDK's own functions (``azure/ai/ml/_utils/utils.py``), repeated here so that layers A, C
and D never import azure-ai-ml; ``tests/validate/test_casing.py`` checks them against the SDK's on samples.
Matching is by property name across a kind's schema (a walk of data and schema together through every ``anyOf``
would cost layer C its speed): a value is only rewritten when no enum of that name lists it as given, and a
field of the same name that is a free string accepts the rewritten value as well.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

from tools.validate.schema import derived_table

CASING_KEY = "x-azureml-casing"


def _csv(text: str, convert: Callable[[str], str]) -> str:
    """azure.ai.ml._utils.utils._csv_parser: a comma-separated value is converted part by part."""
    if "," in text:
        return ",".join(convert(part.strip()) for part in text.split(","))
    return convert(text)


def _camel_to_snake(text: str) -> str:
    text = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", text)
    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", text).lower()


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "lower": str.lower,  # StringTransformedEnum's default (lambda x: x.lower())
    "upper": str.upper,  # _schema/_distillation/distillation_job.py
    "camel_to_snake": lambda text: _csv(text, _camel_to_snake),
    "snake_to_camel": lambda text: re.sub("_([a-zA-Z0-9])", lambda m: m.group(1).upper(), text),
    "snake_to_pascal": lambda text: _csv(text, lambda part: string.capwords(part.replace("_", " ")).replace(" ", "")),
}

_PROBES = ("chat_completion", "ChatCompletion", "chatCompletion", "LOW_PRIORITY", "a,b_c", "Standard_E8s_v3", "x",
           "key", "Key", "AMLToken")


def classify(transform: Callable[[str], Any]) -> str | None:
    """The name of the SDK casing transform ``transform`` behaves as (None: the identity); ValueError if none."""
    seen = tuple(transform(probe) for probe in _PROBES)
    if seen == _PROBES:
        return None
    for name, replica in TRANSFORMS.items():
        if seen == tuple(replica(probe) for probe in _PROBES):
            return name
    raise ValueError(f"azure-ai-ml casing transform {transform!r} is none of {sorted(TRANSFORMS)}; "
                     "add its replica to tools/validate/casing.py")


# ---------------------------------------------------------------------------------------------- per kind
Entry = tuple[str | None, frozenset[str]]


def _enum_nodes(node: Any) -> list[dict[str, Any]]:
    """The enum schemas a property may be: the node itself, its union members, its array items."""
    if not isinstance(node, dict):
        return []
    out = [node] if isinstance(node.get("enum"), list) else []
    for key in ("anyOf", "oneOf"):
        for member in node.get(key) or []:
            out.extend(_enum_nodes(member))
    out.extend(_enum_nodes(node.get("items")))
    return out


def table(schema: dict[str, Any]) -> dict[str, list[Entry]]:
    """property name -> [(casing or None, allowed spellings)] for the names where some enum has a casing."""
    found: dict[str, list[Entry]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                for name, sub in props.items():
                    for enum in _enum_nodes(sub):
                        values = frozenset(v for v in enum["enum"] if isinstance(v, str))
                        found.setdefault(name, []).append((enum.get(CASING_KEY), values))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return {name: entries for name, entries in found.items() if any(casing for casing, _ in entries)}


def _respell(value: str, entries: list[Entry]) -> str:
    if any(value in allowed for _, allowed in entries):
        return value
    for casing, allowed in entries:
        if casing:
            spelled = TRANSFORMS[casing](value)
            if spelled in allowed:
                return spelled
    return value


def respell(data: Any, names: dict[str, list[Entry]]) -> Any:
    """``data`` with each string under a name of ``names`` (or in a list there) in the SDK's compared spelling,
    where that spelling is allowed. ``data`` is not changed: the mappings and lists on the way to a rewritten
    value are copied (plain ``dict``/``list``), everything else is shared, and an unchanged ``data`` is returned
    as is (most specs: no copy at all)."""
    if not isinstance(data, (dict, list)):
        return data
    mapping = isinstance(data, dict)
    out: dict | list | None = None
    for key, value in data.items() if mapping else enumerate(data):
        entries = names.get(key) if mapping and isinstance(key, str) else None
        if entries and isinstance(value, str):
            new = _respell(value, entries)
        elif entries and isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [_respell(item, entries) for item in value]
            new = value if all(a is b for a, b in zip(items, value, strict=True)) else items
        else:
            new = respell(value, names)
        if new is not value:
            if out is None:
                out = dict(data) if mapping else list(data)
            out[key] = new
    return data if out is None else out


def to_sdk_spelling(kind: str, data: Any) -> Any:
    """``data`` with enum values in the spelling azure-ai-ml compares for ``kind`` (``data`` itself unchanged)."""
    names = derived_table(kind, table, {})
    return respell(data, names) if names else data
