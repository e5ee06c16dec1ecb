"""Layer C's precise path skips the full check of a union branch whose ``type`` discriminator a typed mapping does
not match (tools.validate.schema._tagged_any_of): the issues must be exactly those of plain Draft 7."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tools.validate import schema

PIPELINE: dict[str, Any] = {
    "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json",
    "type": "pipeline",
    "name": "tiny_pipeline",
    "inputs": {"n": {"type": "integer"}},
    "jobs": {
        "train": {"type": "command", "component": "azureml:train:1", "inputs": {"n": "${{parent.inputs.n}}"},
                  "resources": {"instance_count": 2}},
        "score": {"type": "command", "component": "azureml:score:1"},
    },
}


def _variant(change: str) -> dict[str, Any]:
    data = copy.deepcopy(PIPELINE)
    jobs = data["jobs"]
    if change == "unknown key in a step":
        jobs["train"]["resourcez"] = {}
    elif change == "wrong type in a step":
        jobs["train"]["resources"]["instance_count"] = "two"
    elif change == "expression where an integer is declared":
        jobs["train"]["resources"]["instance_count"] = "${{parent.inputs.n}}"
    elif change == "unknown step type":
        jobs["score"]["type"] = "comand"
    elif change == "step without a type":
        del jobs["score"]["type"]
    elif change == "step that is not a mapping":
        jobs["score"] = "azureml:score:1"
    elif change == "two broken steps":
        jobs["train"]["resources"]["instance_count"] = [1]
        jobs["score"]["type"] = "parallel"
    elif change == "step input given as a list":
        jobs["train"]["inputs"]["n"] = ["${{parent.inputs.n}}"]
    elif change == "step input mapping with an unknown type":
        jobs["train"]["inputs"]["n"] = {"type": "uri_fodler", "path": "./data"}
    elif change == "wrong top-level type":
        data["type"] = "command"
    return data


CHANGES = ["none", "unknown key in a step", "wrong type in a step", "expression where an integer is declared",
           "unknown step type", "step without a type", "step that is not a mapping", "two broken steps",
           "step input given as a list", "step input mapping with an unknown type", "wrong top-level type"]  # fmt: skip


@pytest.mark.parametrize("change", CHANGES)
def test_tagged_unions_report_what_draft7_reports(change: str) -> None:
    data = _variant(change)
    plain = schema._precise_issues(schema._slow_validator("pipelineComponent", tagged=False), data)
    tagged = schema._precise_issues(schema._slow_validator("pipelineComponent"), data)
    assert tagged == plain
    # an untyped step fits a typeless branch; a step's settings take `${{...}}` (the SDK's bindings, export.py)
    assert bool(plain) == (change not in ("none", "step without a type", "expression where an integer is declared"))


def test_an_unknown_step_type_names_every_allowed_type() -> None:
    issues = schema.validate_against_schema("pipelineComponent", _variant("unknown step type"))
    assert [(i.key_path, i.message.split(" [")[0]) for i in issues] == [(("jobs", "score", "type"), "expected one of")]
    assert "command" in issues[0].message and "parallel" in issues[0].message and "'comand'" in issues[0].message


@pytest.mark.parametrize("extra", [{"isArchived": False}, {"varsion": "1", "variantInfo": {}}, {"description": 1}])
def test_unknown_top_level_keys_shortcut_reports_what_draft7_reports(extra: dict) -> None:
    """A spec whose only faults are unknown top-level keys skips the precise walk (schema._unknown_top_level_keys_
    only) and still gets Draft 7's issues; with another fault besides, the precise path words them all."""
    model = {"name": "m", "version": "1", "path": "./model", "type": "custom_model", **extra}
    assert schema.validate_against_schema("model", model) == schema._precise_issues(
        schema._slow_validator("model"), model)
    if "description" not in extra:
        assert schema._unknown_top_level_keys_only("model", model, schema._fast_validator("model")) is not None
    assert any("did you mean 'version'" in issue.message
               for issue in schema.validate_against_schema("model", {"name": "m", "varsion": "1"}))
