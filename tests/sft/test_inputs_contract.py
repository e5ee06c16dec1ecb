"""components/finetune-sft/inputs.yaml against its schema and against fine_tune.py's parser (issue 19, point 7).

One fact, three places: the component's inputs (inputs.yaml, rendered into spec.yml), the script's options and
their defaults. These tests tie them: every input names a real option of the same kind (integer, number, choice,
boolean, file) with the same default (or says why not), every option is an input or listed as script-only, and
the committed component spec carries each description whole (an unquoted ", " once cut one into a stray key).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import jsonschema
import pytest
import yaml

from tools.core.repo import REPO_ROOT

COMPONENT = REPO_ROOT / "components" / "finetune-sft"
INTERFACE = yaml.safe_load((COMPONENT / "inputs.yaml").read_text(encoding="utf-8"))
SCHEMA = json.loads((COMPONENT / "inputs.schema.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def actions(fine_tune_module) -> dict[str, argparse.Action]:  # noqa: ANN001
    parser = fine_tune_module.build_parser()
    return {flag: action for action in parser._actions for flag in action.option_strings if flag.startswith("--")
            and not flag.startswith("--no-") and flag != "--help"}  # fmt: skip


def test_inputs_yaml_matches_its_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(INTERFACE), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_schema_refuses_the_unquoted_comma_defect() -> None:
    broken = yaml.safe_load("inputs:\n  warmup: {type: number, default: 0.03, flag: --warmup, "
                            "description: warmup (a fraction if < 1, else steps)}\n")  # fmt: skip
    assert "else steps)" in broken["inputs"]["warmup"]  # YAML made a stray key of the text after the comma
    candidate = {**INTERFACE, "inputs": {**INTERFACE["inputs"], **broken["inputs"]}}
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(candidate))


def test_every_option_is_an_input_an_output_or_script_only(actions) -> None:  # noqa: ANN001
    flags = [spec["flag"] for spec in INTERFACE["inputs"].values()]
    outputs = [spec["flag"] for spec in INTERFACE["outputs"].values()]
    assert len(flags) == len(set(flags))
    declared = set(flags) | set(outputs) | set(INTERFACE["script_only"])
    assert declared == set(actions), {"not in the parser": declared - set(actions),
                                      "not in inputs.yaml": set(actions) - declared}  # fmt: skip
    assert not set(INTERFACE["script_only"]) & (set(flags) | set(outputs))


def _kind(fine_tune_module, action: argparse.Action) -> str:  # noqa: ANN001
    """The component input type an option's parser action corresponds to."""
    if isinstance(action, fine_tune_module._BoolAction):
        return "bool"
    if action.type in (int, fine_tune_module._positive_int):
        return "integer"
    if action.type in (float, fine_tune_module._positive_float, fine_tune_module._non_negative_float,
                       fine_tune_module._dropout):  # fmt: skip
        return "number"
    if action.type is Path:
        return "uri_file"
    return "string"


@pytest.mark.parametrize("name", sorted(INTERFACE["inputs"]))
def test_input_matches_the_option(name: str, actions, fine_tune_module) -> None:  # noqa: ANN001
    spec = INTERFACE["inputs"][name]
    action = actions[spec["flag"]]
    assert action.dest == name, f"{spec['flag']} sets {action.dest}, the input is {name}"
    kind = _kind(fine_tune_module, action)
    if kind == "bool":
        assert spec["type"] == "string" and spec.get("enum") == ["true", "false"], name
        script_default = None if action.default is None else str(action.default).lower()
    else:
        assert spec["type"] == kind, f"{name}: input type {spec['type']}, option parses {kind}"
        script_default = action.default
        if action.choices is not None:
            assert spec.get("enum") == list(action.choices), name
        else:
            assert "enum" not in spec, name
    optional_in_script = script_default is None and not action.required
    assert bool(spec.get("optional")) == optional_in_script, f"{name}: optional in one place, not in the other"
    if action.required or spec.get("optional"):
        assert "default" not in spec, name
        return
    ours = spec["default"]
    same = math.isclose(ours, script_default) if kind == "number" else ours == script_default
    if "differs_from_script" in spec:
        assert not same, f"{name}: differs_from_script, but the defaults are equal ({ours!r})"
    else:
        assert same, f"{name}: inputs.yaml default {ours!r}, fine_tune.py default {script_default!r}"


def test_committed_component_carries_every_input_whole() -> None:
    spec = yaml.safe_load((COMPONENT / "spec.yml").read_text(encoding="utf-8"))
    assert list(spec["inputs"]) == list(INTERFACE["inputs"])
    for name, declared in INTERFACE["inputs"].items():
        rendered = spec["inputs"][name]
        assert rendered["description"] == declared["description"], name
        assert rendered.get("default") == declared.get("default"), name
        assert f"{declared['flag']} ${{{{inputs.{name}}}}}" in spec["command"], name
    for name, declared in INTERFACE["outputs"].items():
        assert spec["outputs"][name]["description"] == declared["description"], name
