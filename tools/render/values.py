"""Workspace values: load `workspaces/defaults.yaml` + `workspaces/<name>.yaml`, deep-merge them, and check both
files and the merge against `schemas/values.schema.json` with one `file:line: key.path: message` line per error."""

from __future__ import annotations

import copy
import difflib
import json
import math
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.repo import active, contract, sft_interface
from tools.core.yamlio import KeyPath, LinedDict, YamlProblem, format_key_path, line_of, load_file, plain

WORKSPACES_DIR = "workspaces"
DEFAULTS_FILE = "defaults.yaml"
DEFAULT_WORKSPACE = "dev"
VALUES_SCHEMA = "schemas/values.schema.json"

# chat_completion_pipeline inputs that the values may not set in `finetune`, and where they come from instead.
DERIVED_INPUTS: dict[str, str] = {
    "number_of_gpu_to_use_finetuning": "derived from the GPUs per node of the finetune SKU (schemas/catalog/skus.yaml)",
    "compute_model_import": "derived from compute.mode and compute.cluster.name",
    "compute_preprocess": "derived from compute.mode and compute.cluster.name",
    "compute_finetune": "derived from compute.mode and compute.cluster.name",
    "compute_model_evaluation": "derived from compute.mode and compute.cluster.name",
    "instance_type_model_import": "set compute.serverless.instance_type_model_import",
    "instance_type_preprocess": "set compute.serverless.instance_type_preprocess",
    "instance_type_finetune": "set compute.serverless.instance_type_finetune",
    "instance_type_model_evaluation": "set compute.serverless.instance_type_model_evaluation",
    "task_name": "fixed to ChatCompletion",
    "huggingface_id": "the model comes from `model` (registry, name, version) as mlflow_model_path",
    "mlflow_model_path": "the model comes from `model` (registry, name, version)",
    "pytorch_model_path": "the model comes from `model` (registry, name, version)",
    "train_file_path": "the data comes from `data.train`",
    "validation_file_path": "the data comes from `data.test` (the validation split)",
    "test_file_path": "bound to `data.test` too, so the preprocess step carves nothing out of the training file",
}


@dataclass
class Values:
    """Merged values of one workspace, and where each key came from."""

    workspace: str
    data: dict[str, Any]
    sources: list[tuple[str, Any]] = field(default_factory=list)  # (repo-relative file, lined data), last wins

    def origin(self, key_path: KeyPath) -> tuple[str, int | None]:
        """The file and line that set ``key_path`` (the workspace file if it has the key, else the defaults)."""
        for rel, lined in reversed(self.sources):
            if _has_path(lined, key_path):
                return rel, line_of(lined, key_path)
        rel, lined = self.sources[-1]
        return rel, line_of(lined, key_path)

    def where(self, key_path: KeyPath) -> str:
        rel, line = self.origin(key_path)
        return f"{rel}:{line}: {format_key_path(key_path)}" if line else f"{rel}: {format_key_path(key_path)}"


def _has_path(data: Any, key_path: KeyPath) -> bool:
    node = data
    for part in key_path:
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and 0 <= part < len(node)
        ):
            node = node[part]
        else:
            return False
    return True


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; scalars and lists in ``override`` replace those in ``base``."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _input_properties(inputs: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    """JSON-schema properties for a component's scalar inputs (string booleans also accept YAML booleans)."""
    props: dict[str, Any] = {}
    for name, spec in inputs.items():
        if name in skip or spec.get("bound") or spec["type"] not in ("string", "integer", "number"):
            continue
        enum = spec.get("enum")
        if enum == ["true", "false"]:
            props[name] = {"anyOf": [{"type": "boolean"}, {"enum": enum}], "description": "boolean"}
        elif enum:
            numeric = [int(v) for v in enum if v.isdigit()]
            props[name] = {"enum": [*enum, *numeric]}
        elif spec["type"] == "integer":
            props[name] = {"type": "integer", **({"minimum": spec["min"]} if "min" in spec else {})}
        elif spec["type"] == "number":
            props[name] = {"type": "number"}
        else:
            props[name] = {"type": "string"}
    return props


def _finetune_properties() -> dict[str, Any]:
    """`finetune`: the chat_completion_pipeline inputs from the committed contract, minus the derived ones. File
    inputs (`uri_file`: `finetune_config_path`, `deepspeed`, ...) take a repo-relative path or a URI; the renderer
    makes each a pipeline input bound to the step."""
    inputs = contract()["inputs"]
    props = _input_properties(inputs, set(DERIVED_INPUTS))
    for name, spec in inputs.items():
        if spec["type"] == "uri_file" and name not in DERIVED_INPUTS and not spec.get("bound"):
            props[name] = {"type": "string", "minLength": 1, "description": "repo-relative file or URI"}
    return props


def _sft_properties() -> dict[str, Any]:
    """`sft.hyperparameters`: the inputs of components/finetune-sft (its inputs.yaml), minus the bound ones."""
    return _input_properties(sft_interface()["inputs"], set())


def values_schema(partial: bool = False) -> dict[str, Any]:
    """The values schema with `finetune` filled from the contract; ``partial`` drops `required` (single files)."""
    schema = json.loads(active().values_schema_file.read_text(encoding="utf-8"))
    schema["properties"]["finetune"]["properties"] = _finetune_properties()
    hyper = schema["properties"]["sft"]["properties"]["hyperparameters"]
    hyper["properties"] = _sft_properties()
    hyper["additionalProperties"] = False
    if partial:

        def strip(node: Any) -> None:
            if isinstance(node, dict):
                node.pop("required", None)
                if "oneOf" in node and all(set(branch) == {"required"} for branch in node["oneOf"]):
                    node.pop("oneOf")
                for child in node.values():
                    strip(child)
            elif isinstance(node, list):
                for child in node:
                    strip(child)

        strip(schema)
    return schema


def _subschema(schema: dict[str, Any], key_path: KeyPath) -> dict[str, Any] | None:
    node = schema
    for part in key_path:
        if isinstance(node, dict) and "$ref" in node:
            node = _resolve_ref(schema, node["$ref"])
        props = node.get("properties", {}) if isinstance(node, dict) else {}
        if part in props:
            node = props[part]
        elif isinstance(node, dict) and isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    if isinstance(node, dict) and "$ref" in node:
        node = _resolve_ref(schema, node["$ref"])
    return node


def _resolve_ref(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = schema
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _short(value: Any) -> str:
    """``repr`` cut to a line: a 100 KB value in a values file must not become a 100 KB message."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    return short.repr(value)


def _describe(error: Any) -> str:
    """A short human message for a jsonschema error."""
    validator = error.validator
    value = error.instance
    if validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {expected}, got {type(value).__name__} {_short(value)}"
    if validator == "enum":
        return f"expected one of {', '.join(map(str, error.validator_value))}, got {_short(value)}"
    if validator == "required":
        return error.message.replace("is a required property", "is required")
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"):
        return f"{_short(value)} violates {validator} {error.validator_value}"
    if validator == "pattern":
        return f"{_short(value)} does not match {error.validator_value}"
    if validator == "anyOf" and error.schema.get("description") == "boolean":
        return f"expected true or false, got {_short(value)}"
    if validator == "oneOf":
        return "set exactly one of: " + ", ".join(
            "/".join(branch.get("required", [])) for branch in error.validator_value
        )
    return error.message


def _schema_errors(data: dict[str, Any], schema: dict[str, Any]) -> list[tuple[KeyPath, str]]:
    from jsonschema import Draft7Validator  # noqa: PLC0415 - heavy library, imported when used

    problems: list[tuple[KeyPath, str]] = []
    for error in Draft7Validator(schema).iter_errors(data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = sorted((_subschema(schema, path) or {}).get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed)):
                if key in DERIVED_INPUTS and path == ("finetune",):
                    problems.append(((*path, key), f"not settable here: {DERIVED_INPUTS[key]}"))
                    continue
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]}?)" if close else f" (allowed: {', '.join(allowed)})"
                problems.append(((*path, key), f"unknown key{hint}"))
        elif error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            problems.append(((*path, missing) if missing else path, "required key is missing"))
        else:
            problems.append((path, _describe(error)))
    return problems


def _non_finite(data: Any) -> list[tuple[KeyPath, str]]:
    """Every ``.nan``/``.inf`` float in one values file (JSON Schema's ``number`` accepts them; no spec, JSON body or
    Azure ML input takes one), walked without recursion."""
    found: list[tuple[KeyPath, str]] = []
    stack: list[tuple[KeyPath, Any]] = [((), data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend(((*path, key), value) for key, value in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, index), value) for index, value in reversed(list(enumerate(node))))
        elif isinstance(node, float) and not math.isfinite(node):
            found.append((path, f"{node!r} is not a finite number (write a finite value; .nan and .inf are refused)"))
    return found


def workspace_names(root: Path | None = None) -> list[str]:
    """Every workspace: the `*.yaml` files of workspaces/ except the shared defaults, default workspace first
    (``root``: default the active repo)."""
    names = sorted(p.stem for p in ((root or active().root) / WORKSPACES_DIR).glob("*.yaml") if p.name != DEFAULTS_FILE)
    return sorted(names, key=lambda n: n != DEFAULT_WORKSPACE)


def _read(root: Path, rel: str) -> Any:
    path = root / rel
    if not path.is_file():
        raise UserError(f"{rel}: no such values file")
    try:
        data = load_file(path)  # bounded: UTF-8, size, depth, aliases (tools.core.yamlio)
    except OSError as error:
        raise UserError(f"{rel}: cannot read: {error.strerror or error}") from None
    except YamlProblem as problem:
        key = f" {format_key_path(problem.key_path)}:" if problem.key_path else ""
        raise UserError(f"{rel}:{problem.line}:{key} {problem.message}") from None
    if data is None:
        data = LinedDict()
    if not isinstance(data, dict):
        raise UserError(f"{rel}:1: expected a mapping of values at the top level")
    return data


def load_values(name: str, root: Path | None = None) -> Values:
    """Load, check and merge one workspace's values from ``root`` (default: the active repo, which a command's
    ``--root`` selects). Raises UserError with one line per problem."""
    root = root or active().root
    known = workspace_names(root)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known)})"
        raise UserError(f"{WORKSPACES_DIR}/{name}.yaml: unknown workspace '{name}'{hint}")
    sources = [(f"{WORKSPACES_DIR}/{DEFAULTS_FILE}", _read(root, f"{WORKSPACES_DIR}/{DEFAULTS_FILE}"))]
    sources.append((f"{WORKSPACES_DIR}/{name}.yaml", _read(root, f"{WORKSPACES_DIR}/{name}.yaml")))
    lines: list[str] = []
    for rel, lined in sources:
        non_finite = _non_finite(lined)
        named = {key_path for key_path, _ in non_finite}
        schema_errors = _schema_errors(plain(lined), values_schema(partial=True))
        for key_path, message in non_finite + [error for error in schema_errors if error[0] not in named]:
            line = line_of(lined, key_path)
            lines.append(f"{rel}:{line}: {format_key_path(key_path)}: {message}")
    merged: dict[str, Any] = {}
    for _, lined in sources:
        merged = deep_merge(merged, plain(lined))
    values = Values(workspace=name, data=merged, sources=sources)
    if not lines:
        for key_path, message in _schema_errors(merged, values_schema()):
            lines.append(f"{values.where(key_path)}: {message}")
    if lines:
        raise UserError("\n".join(dict.fromkeys(lines)))
    return values
