"""Pipeline steps match their component's interface: a registry component's committed contract
(``schemas/contracts/``) or a local component spec. Input names, types, enums, required inputs, output names and
the types of the pipeline outputs they bind to."""

from __future__ import annotations

import difflib
from typing import Any

from tools.validate.document import DATA_TYPES, MODEL_TYPES, Spec
from tools.validate.expressions import parent_binding
from tools.validate.findings import ERROR, NOTE, WARNING
from tools.validate.interfaces import step_contract
from tools.validate.references import REGISTRY_ASSET, REGISTRY_UNVERSIONED
from tools.validate.rules.support import Emit, RuleContext

SCALAR_TYPES = ("string", "integer", "number", "boolean")
DATA_DELIVERY = "https://learn.microsoft.com/azure/machine-learning/how-to-read-write-data-v2#supported-modes"


def _type_severity(actual: str, expected: str) -> str:
    """A data input of another data type (uri_file, uri_folder, mltable) is a warning: Azure passes the path and
    delivers it as the type the step declares (mounted or downloaded, DATA_DELIVERY); whether the content fits (a
    file where a folder is read, a folder without an MLTable file) shows only when the step runs, and Azure's own
    pipeline samples bind a web-URL uri_file to a uri_folder input and a uri_folder asset to an mltable input. Any
    other pair (a model for data, data for a model) is refused: an error."""
    return WARNING if actual in DATA_TYPES and expected in DATA_TYPES else ERROR


def _delivered(actual: str, expected: str) -> str:
    if _type_severity(actual, expected) == ERROR:
        return ""
    return (f" (Azure delivers the path as {expected}; the step fails only if its content is not one: "
            f"{DATA_DELIVERY})")


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    if spec.kind != "pipelineJob":
        return
    data = spec.data
    jobs = data.get("jobs") or {}
    if not isinstance(jobs, dict):
        return
    for step_name, step in jobs.items():
        if isinstance(step, dict):
            _check_step(spec, ("jobs", step_name), step, data.get("inputs") or {}, data.get("outputs") or {}, emit)


def _check_step(spec: Spec, base: tuple, step: dict, top_inputs: Any, top_outputs: Any, emit: Emit) -> None:
    component = step.get("component")
    contract, source = step_contract(spec, step)
    if source == "none" or (source == "unknown" and not str(component).startswith("azureml:")):
        return  # not a component reference we know how to read (missing local file: layer B reports it)
    match = REGISTRY_ASSET.match(component) or REGISTRY_UNVERSIONED.match(component)
    if contract is None:
        emit(
            (*base, "component"),
            f"registry component {match['name']} has no committed contract in "
            "schemas/contracts/: its inputs cannot be checked (`python -m tools contracts add SPEC` records it)",
            NOTE,
            "contract",
        )
        return
    if match and match.groupdict().get("sel") == "versions" and str(match["ref"]) != str(contract["version"]):
        emit(
            (*base, "component"),
            f"{match['name']} version {match['ref']} differs from the committed contract "
            f"version {contract['version']}: update schemas/contracts/{match['name']}.yaml first",
            rule="contract",
        )
    declared = contract["inputs"]
    step_inputs = step.get("inputs") or {}
    if not isinstance(step_inputs, dict):
        return
    for name, value in step_inputs.items():
        key = (*base, "inputs", name)
        if name not in declared:
            close = difflib.get_close_matches(str(name), list(declared), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            emit(
                key,
                f"'{name}' is not an input of {contract['name']} {contract['version']}{hint}",
                rule="contract-input",
            )
            continue
        check_input_value(key, value, declared[name], top_inputs, emit, contract)
    for name, facts in declared.items():
        if not facts.get("optional", True) and "default" not in facts and name not in step_inputs:
            emit((*base, "inputs"), f"required input '{name}' of {contract['name']} is missing", rule="contract-input")
    outputs = step.get("outputs") or {}
    for name, value in outputs.items() if isinstance(outputs, dict) else []:
        key = (*base, "outputs", name)
        if name not in contract.get("outputs", {}):
            close = difflib.get_close_matches(str(name), list(contract.get("outputs", {})), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            emit(key, f"'{name}' is not an output of {contract['name']}{hint}", rule="contract-output")
            continue
        bound = parent_binding(value)
        if bound and bound[0] == "outputs" and isinstance(top_outputs, dict):
            target = top_outputs.get(bound[1])
            expected = contract["outputs"][name]["type"]
            if isinstance(target, dict) and target.get("type") not in (None, expected):
                emit(
                    key,
                    f"binds {contract['name']} output '{name}' ({expected}) to pipeline output "
                    f"'{bound[1]}' of type {target.get('type')}",
                    rule="contract-output",
                )


def check_input_value(key: tuple, value: Any, facts: dict, top_inputs: Any, emit: Emit, contract: dict) -> None:
    """One step input against its declared type, enum and minimum."""
    expected = facts["type"]
    enum = facts.get("enum")
    bound = parent_binding(value)
    if bound:
        if bound[0] == "inputs" and isinstance(top_inputs, dict):
            target = top_inputs.get(bound[1])
            actual = target.get("type") if isinstance(target, dict) else None
            if actual and expected not in SCALAR_TYPES and actual != expected:
                emit(key, f"bound to pipeline input '{bound[1]}' of type {actual}; {contract['name']} expects "
                     f"{expected}{_delivered(actual, expected)}", _type_severity(actual, expected), "contract-type")
        return
    if isinstance(value, dict):
        actual = value.get("type")
        if expected in ("string", "integer", "number"):
            emit(key, f"expected a {expected} value, got a mapping", rule="contract-type")
        elif actual and actual != expected:
            emit(key, f"expected type {expected}, got {actual}{_delivered(actual, expected)}",
                 _type_severity(actual, expected), "contract-type")
        return
    if enum:
        if isinstance(value, bool):
            text = "true" if value else "false"
            emit(
                key,
                f"YAML boolean {text} where {contract['name']} expects the string \"{text}\" (quote it: '{text}')",
                rule="string-enum",
            )
        elif not isinstance(value, str):
            emit(
                key,
                f"expected one of {', '.join(repr(e) for e in enum)} as a string, got {type(value).__name__} "
                f"{value!r} (quote it)",
                rule="string-enum",
            )
        elif value not in enum:
            close = difflib.get_close_matches(value, enum, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            emit(key, f"expected one of {', '.join(enum)}, got {value!r}{hint}", rule="string-enum")
        return
    if expected == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            emit(key, f"expected an integer, got {type(value).__name__} {value!r}", rule="contract-type")
        elif "min" in facts and value < facts["min"]:
            emit(key, f"{value} is below the minimum {facts['min']}", rule="range")
    elif expected == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = " (PyYAML reads 1e-8 as a string: write 1.0e-08)" if isinstance(value, str) and "e" in value else ""
            emit(key, f"expected a number, got {type(value).__name__} {value!r}{hint}", rule="contract-type")
    elif expected == "string":
        # Azure sends every literal input as text: a number for a string input arrives as its digits (coerced)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            emit(key, f"expected a string, got {type(value).__name__} {value!r}", rule="contract-type")
    elif expected == "boolean":
        # "True"/"False" strings: Azure parses boolean inputs case-insensitively (the SDK's own samples use them)
        if not isinstance(value, bool) and not (isinstance(value, str) and value.lower() in ("true", "false")):
            emit(key, f"expected a boolean, got {type(value).__name__} {value!r}", rule="contract-type")
    elif expected in MODEL_TYPES | DATA_TYPES and isinstance(value, str) and not value.startswith(("azureml:", "${{")):
        emit(
            key,
            f"expected a {expected} input (a mapping with type/path or a binding), got {value!r}",
            rule="contract-type",
        )
