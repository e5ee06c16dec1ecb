"""rules.contracts on literal dicts: steps against a local component's interface and a committed registry
contract."""

from __future__ import annotations

from pathlib import Path

from tools.core.repo import contracts
from tools.validate.rules import contracts as rule

COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: train
type: command
inputs:
  epochs: {type: integer, min: 1, default: 1}
  mode: {type: string, enum: [fast, slow], default: fast}
  data: {type: uri_file, optional: true}
outputs:
  model: {type: mlflow_model}
command: python train.py
environment: azureml:env:1
"""


def _pipeline(step: dict, outputs: dict | None = None) -> dict:
    return {"type": "pipeline", "outputs": outputs or {}, "jobs": {"train": {"type": "command", **step}}}


def test_local_component_inputs_are_checked(run_rule, tmp_path: Path) -> None:
    (tmp_path / "train.yml").write_text(COMPONENT)
    step = {"component": "./train.yml", "inputs": {"epochs": "3", "mode": "fastt", "dat": {"type": "uri_file"}}}
    found = {f[0][-1]: f[2] for f in run_rule(rule.check, _pipeline(step), "pipelineJob", path=tmp_path / "p.yml")}
    assert found == {"epochs": "contract-type", "mode": "string-enum", "dat": "contract-input"}


def test_output_bound_to_a_pipeline_output_of_another_type(run_rule, tmp_path: Path) -> None:
    (tmp_path / "train.yml").write_text(COMPONENT)
    step = {"component": "./train.yml", "outputs": {"model": "${{parent.outputs.m}}"}}
    found = run_rule(rule.check, _pipeline(step, {"m": {"type": "uri_folder"}}), "pipelineJob",
                     path=tmp_path / "p.yml")  # fmt: skip
    assert [(f[0], f[2]) for f in found] == [(("jobs", "train", "outputs", "model"), "contract-output")]


def test_committed_contract_version_mismatch(run_rule) -> None:
    name, facts = next(iter(contracts().items()))
    step = {"component": f"azureml://registries/azureml/components/{name}/versions/{facts['version']}9"}
    found = run_rule(rule.check, _pipeline(step), "pipelineJob")
    assert [(f[0], f[1], f[2]) for f in found] == [(("jobs", "train", "component"), "error", "contract")]


def test_yaml_boolean_for_a_string_enum(run_rule, tmp_path: Path) -> None:
    (tmp_path / "train.yml").write_text(COMPONENT)
    found = run_rule(rule.check, _pipeline({"component": "./train.yml", "inputs": {"mode": True}}), "pipelineJob",
                     path=tmp_path / "p.yml")  # fmt: skip
    assert [f[2] for f in found] == ["string-enum"] and "quote it" in found[0][3]
