"""Rule gate-set-in-training: a training job that binds the gate set (path, datastore URI, data asset) is one error;
the validation split and the evaluation job's own binding are not."""

from __future__ import annotations

import yaml

from tools.core.repo import REPO_ROOT
from tools.validate.document import parse_spec
from tools.validate.rules import gate
from tools.validate.rules.concerns import check_spec
from tools.validate.rules.support import RuleContext

GATE_ASSET = {"$schema": "https://azuremlschemas.azureedge.net/latest/data.schema.json", "name": "my-gate",
              "version": "1", "type": "uri_file", "path": "held/out.jsonl", "tags": {"role": "gate"}}  # fmt: skip


def _job(path: str) -> dict:
    return {"type": "pipeline", "inputs": {"train_data": {"type": "uri_file", "path": "train.jsonl"},
                                           "validation_data": {"type": "uri_file", "path": path}},
            "jobs": {"sft": {"type": "command", "component": "../components/finetune-sft/spec.yml"}}}  # fmt: skip


def test_a_gate_file_by_name_is_an_error(run_rule) -> None:  # noqa: ANN001
    found = run_rule(gate.check, _job("../data/sample/gate_sft.jsonl"), kind="pipelineJob")
    assert [(f[0], f[2]) for f in found] == [(("inputs", "validation_data", "path"), "gate-set-in-training")]


def test_the_gate_asset_by_name_and_by_its_path_are_errors(run_rule) -> None:  # noqa: ANN001
    by_asset = run_rule(gate.check, _job("azureml:my-gate:1"), kind="pipelineJob", others=[GATE_ASSET])
    by_path = run_rule(gate.check, _job("held/out.jsonl"), kind="pipelineJob", others=[GATE_ASSET])
    assert len(by_asset) == 1 and len(by_path) == 1 and "binds the gate set" in by_asset[0][3]


def test_the_validation_split_and_the_evaluation_job_pass(run_rule) -> None:  # noqa: ANN001
    assert run_rule(gate.check, _job("../data/sample/test_sft.jsonl"), kind="pipelineJob", others=[GATE_ASSET]) == []
    evaluation = _job("../data/sample/gate_sft.jsonl")
    evaluation["jobs"] = {"evaluate": {"type": "command", "component": "../components/evaluate/spec.yml"}}
    assert run_rule(gate.check, evaluation, kind="pipelineJob") == []


def test_a_planted_binding_in_the_committed_job_is_one_error_line() -> None:
    """jobs/finetune.yml with its validation file swapped for the gate set: exactly one finding, from this rule."""
    path = REPO_ROOT / "jobs" / "finetune.yml"
    text = path.read_text().replace("../data/sample/test_sft.jsonl", "../data/sample/gate_sft.jsonl")
    assert "gate_sft.jsonl" in text
    spec = parse_spec(path, "jobs/finetune.yml", text)
    others = [parse_spec(REPO_ROOT / "data" / "gate-sft.yml", "data/gate-sft.yml")]
    findings = check_spec(spec, RuleContext([spec, *others]))
    assert [f.rule for f in findings] == ["gate-set-in-training"]
    assert "\n" not in findings[0].text() and "jobs/finetune.yml:" in findings[0].text()


def test_no_committed_training_spec_binds_the_gate_set() -> None:
    specs = [parse_spec(p, str(p.relative_to(REPO_ROOT))) for p in sorted((REPO_ROOT / "jobs").glob("*.yml"))]
    specs += [parse_spec(REPO_ROOT / "data" / "gate-sft.yml", "data/gate-sft.yml")]
    context = RuleContext(specs)
    assert [f.text() for s in specs for f in check_spec(s, context) if f.rule == "gate-set-in-training"] == []
    assert yaml.safe_load((REPO_ROOT / "data" / "gate-sft.yml").read_text())["tags"]["role"] == "gate"
