"""The `type: finetuning` job and the model/input values of the Azure-run paths: the rendered spec loads with the
pinned azure-ai-ml as a CustomModelFineTuningJob wherever it runs; hyperparameters are strings; 0.0.82's file and
trust_remote_code inputs and a model of another registry are expressible in values; no render relies on the
component's retired default instance types."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import yaml

from tools.core.errors import UserError
from tools.core.repo import active, contract, models
from tools.render.engine import render_workspace

SPEC = "jobs/finetune-serverless.yml"


@pytest.fixture()
def repo_copy(tmp_path: Path, repo_root: Path) -> Path:
    for folder in ("workspaces", "schemas", "templates", "data/sample"):
        shutil.copytree(repo_root / folder, tmp_path / folder)
    return tmp_path


def render_to(root: Path, out: Path | None = None) -> Path:
    """Render dev of ``root`` into ``out`` (default: ``root``) and return the output root."""
    out = out or root
    for item in render_workspace("dev", out, root):
        target = out / item.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.text)
    return out


def append_values(root: Path, text: str) -> None:
    """Add top-level sections to dev.yaml (ones it does not have yet)."""
    path = root / "workspaces" / "dev.yaml"
    path.write_text(path.read_text() + "\n" + text)


def add_finetune(root: Path, keys: str) -> None:
    """Add keys (two-space indented lines) to dev.yaml's own `finetune:` section."""
    path = root / "workspaces" / "dev.yaml"
    path.write_text(path.read_text().replace("\nfinetune:\n", "\nfinetune:\n" + keys, 1))


def load(path: Path):
    from azure.ai.ml import load_job

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK marks the fine-tuning classes experimental
        return load_job(path)


def test_committed_spec_loads_as_a_custom_model_finetuning_job(repo_root: Path) -> None:
    job = load(repo_root / SPEC)
    assert type(job).__name__ == "CustomModelFineTuningJob"
    assert job.task == "chatCompletion" and job.model_provider.lower() == "custom"
    assert job.model["path"] == "azureml://registries/azureml/models/Phi-4/versions/8"
    assert job.resources.instance_types == ["Standard_NC24ads_A100_v4"] and job.compute is None
    assert all(isinstance(value, str) for value in job.hyperparameters.values())
    assert job.hyperparameters["learning_rate"] == "5.0e-06" and float(job.hyperparameters["learning_rate"]) == 5e-06
    assert job.outputs["registered_model"]["type"] == "mlflow_model"
    data = yaml.safe_load((repo_root / SPEC).read_text())
    assert data["training_data"]["path"] == "../data/sample/train_sft.jsonl"
    assert "num_nodes_finetune" not in data["hyperparameters"]  # the pipeline's compute, not training


@pytest.mark.parametrize("runs_on", ["cluster", "serverless"])
def test_where_it_runs_is_a_value(repo_copy: Path, runs_on: str) -> None:
    append_values(repo_copy, f"finetuning_job:\n  runs_on: {runs_on}\n")
    job = load(render_to(repo_copy) / SPEC)
    assert type(job).__name__ == "CustomModelFineTuningJob"
    data = yaml.safe_load((repo_copy / SPEC).read_text())
    if runs_on == "cluster":
        assert data["compute"] == "gpu-a100" and "resources" not in data
    else:
        assert "compute" not in data and "resources" not in data


def test_hyperparameters_are_strings_from_the_same_values(repo_copy: Path) -> None:
    add_finetune(repo_copy, "  apply_lora: true\n  warmup_steps: 20\n")
    append_values(repo_copy, "finetuning_job:\n  hyperparameters:\n    lora_r: 16\n    weight_decay: 0.01\n")
    data = yaml.safe_load((render_to(repo_copy) / SPEC).read_text())["hyperparameters"]
    assert data["apply_lora"] == "true" and data["warmup_steps"] == "20"
    assert data["lora_r"] == "16" and data["weight_decay"] == "0.01"


def test_unknown_instance_type_is_one_line(repo_copy: Path) -> None:
    append_values(repo_copy, "finetuning_job:\n  instance_types: [Standard_NC24ads_A100_v4, Standard_XL_v9]\n")
    with pytest.raises(
        UserError, match=r"workspaces/dev.yaml:\d+: finetuning_job.instance_types\[1\]: unknown VM size"
    ):
        render_to(repo_copy)


def test_finetune_config_path_and_trust_remote_code_from_values(repo_copy: Path) -> None:
    (repo_copy / "configs").mkdir()
    (repo_copy / "configs" / "finetune_config.json").write_text('{"load_model_kwargs": {}}\n')
    add_finetune(repo_copy, "  finetune_config_path: configs/finetune_config.json\n  trust_remote_code: true\n")
    out = render_to(repo_copy)
    data = yaml.safe_load((out / "jobs/finetune.yml").read_text())
    assert data["inputs"]["finetune_config_path"] == {"type": "uri_file", "path": "../configs/finetune_config.json"}
    step = data["jobs"]["finetune"]["inputs"]
    assert step["finetune_config_path"] == "${{parent.inputs.finetune_config_path}}"
    assert step["trust_remote_code"] == "true"
    assert contract()["inputs"]["finetune_config_path"]["type"] == "uri_file"
    assert type(load(out / "jobs/finetune.yml")).__name__ == "PipelineJob"
    hyper = yaml.safe_load((out / SPEC).read_text())["hyperparameters"]
    assert hyper["trust_remote_code"] == "true" and "finetune_config_path" not in hyper


def test_a_file_input_must_be_a_path(repo_copy: Path) -> None:
    add_finetune(repo_copy, "  finetune_config_path: 3\n")
    with pytest.raises(UserError, match=r"workspaces/dev.yaml:\d+: finetune.finetune_config_path: expected string"):
        render_to(repo_copy)


def test_a_model_of_another_registry(repo_copy: Path) -> None:
    append_values(
        repo_copy,
        "model:\n  registry: azureml-openai-oss\n  name: gpt-oss-20b\n  version: 6\n"
        "compute:\n  cluster:\n    size: Standard_ND96isr_H100_v5\n",
    )
    out = render_to(repo_copy)
    data = yaml.safe_load((out / "jobs/finetune.yml").read_text())
    uri = "azureml://registries/azureml-openai-oss/models/gpt-oss-20b/versions/6"
    assert data["inputs"]["base_model"]["path"] == uri
    assert data["jobs"]["finetune"]["component"].startswith("azureml://registries/azureml/components/")  # same pipeline
    assert data["jobs"]["finetune"]["inputs"]["number_of_gpu_to_use_finetuning"] == 8
    assert load(out / SPEC).model["path"] == uri
    assert "Standard_ND96isr_H100_v5" in models()["gpt-oss-20b"]["finetune_skus"]


def test_a_model_in_the_wrong_registry_is_one_line(repo_copy: Path) -> None:
    append_values(repo_copy, "model:\n  name: gpt-oss-20b\n  version: 6\n")
    with pytest.raises(
        UserError,
        match=r"workspaces/defaults.yaml:\d+: model.registry: gpt-oss-20b is in registry "
        r"'azureml-openai-oss', not 'azureml'",
    ):
        render_to(repo_copy)


@pytest.mark.parametrize("mode", ["cluster", "serverless"])
def test_no_stage_relies_on_the_components_retired_default_instance_type(repo_copy: Path, mode: str) -> None:
    append_values(repo_copy, f"compute:\n  mode: {mode}\n")
    step = yaml.safe_load((render_to(repo_copy) / "jobs/finetune.yml").read_text())["jobs"]["finetune"]["inputs"]
    inputs = contract()["inputs"]
    for stage in ("model_import", "preprocess", "finetune", "model_evaluation"):
        compute = step[f"compute_{stage}"]  # always rendered
        if compute == "serverless":
            chosen = step[f"instance_type_{stage}"]  # then the instance type is rendered too
            assert chosen != inputs[f"instance_type_{stage}"]["default"]
            assert not (active().sku(chosen) or {}).get("retired_on"), chosen
    assert (active().sku(inputs["instance_type_finetune"]["default"]) or {}).get("retired_on") == "2025-03-31"
