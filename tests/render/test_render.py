"""Rendering: deterministic, committed render up to date, contract types honoured, bindings preserved."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.core.errors import UserError
from tools.core.repo import contract, sku_gpus
from tools.render.derived import display_name, format_float, yaml_scalar
from tools.render.engine import check_rendered, render_workspace
from tools.render.values import load_values


@pytest.fixture()
def repo_copy(tmp_path: Path, repo_root: Path) -> Path:
    for folder in ("workspaces", "schemas", "templates"):
        shutil.copytree(repo_root / folder, tmp_path / folder)
    return tmp_path


def rendered(root: Path, workspace: str = "dev", out: Path | None = None) -> dict[str, str]:
    return {f.relpath: f.text for f in render_workspace(workspace, out or root, root)}


def job(root: Path, workspace: str = "dev") -> dict:
    return yaml.safe_load(rendered(root, workspace)["jobs/finetune.yml"])


def switch_model(root: Path, name: str, version: int, registry: str = "azureml") -> None:
    """The one values change that moves both Azure-run paths to another registry model."""
    path = root / "workspaces" / "dev.yaml"
    path.write_text(path.read_text() + f"\nmodel:\n  registry: {registry}\n  name: {name}\n  version: {version}\n")


def test_committed_render_matches_templates(repo_root: Path) -> None:
    files = render_workspace("dev", repo_root, repo_root)
    assert check_rendered(files, repo_root, repo_root) == []


def test_render_check_cli_detects_a_hand_edit(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, "-m", "tools", "render", "--workspace", "prod", "--out", str(out)], check=True, cwd=repo_root
    )
    target = out / "endpoints" / "deployment.yml"
    target.write_text(target.read_text().replace("instance_count: 2", "instance_count: 3"))
    result = subprocess.run(
        [sys.executable, "-m", "tools", "render", "--workspace", "prod", "--out", str(out), "--check"],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "endpoints/deployment.yml: differs from what templates/endpoints/deployment.yml.j2 renders" in result.stdout
    assert "-instance_count: 3" in result.stdout and "+instance_count: 2" in result.stdout


def test_render_is_deterministic_byte_for_byte(repo_root: Path) -> None:
    assert rendered(repo_root, "prod", repo_root / "build" / "prod") == rendered(
        repo_root, "prod", repo_root / "build" / "prod"
    )


def test_every_rendered_spec_starts_with_header_and_schema_line(repo_root: Path) -> None:
    for relpath, text in rendered(repo_root).items():
        if not relpath.endswith(".yml"):
            continue
        lines = text.splitlines()
        assert lines[0].startswith("# Rendered by `python -m tools render`"), relpath
        if yaml.safe_load(text).get("type") == "finetuning":  # no published $schema for this kind
            assert not any(line.startswith("$schema:") for line in lines), relpath
            continue
        assert lines[1].startswith("$schema: https://azuremlschemas.azureedge.net/latest/"), relpath


def test_bindings_survive_jinja_and_no_bare_dollar(repo_root: Path) -> None:
    text = rendered(repo_root)["jobs/finetune.yml"]
    for binding in (
        "${{parent.inputs.base_model}}",
        "${{parent.inputs.train_data}}",
        "${{parent.outputs.trained_model}}",
    ):
        assert binding in text
    data = yaml.safe_load(text)
    values = [v for v in data["jobs"]["finetune"]["inputs"].values()] + list(
        data["jobs"]["finetune"]["outputs"].values()
    )
    assert "$" not in values and all(v != "" for v in values)


def test_job_follows_the_contract(repo_root: Path) -> None:
    data = job(repo_root)
    step = data["jobs"]["finetune"]
    declared = contract()["inputs"]
    assert step["component"].endswith(f"/components/chat_completion_pipeline/versions/{contract()['version']}")
    for name, value in step["inputs"].items():
        assert name in declared, name
        facts = declared[name]
        if facts.get("enum"):
            assert isinstance(value, str) and value in facts["enum"], (name, value)
        elif facts["type"] == "integer":
            assert isinstance(value, int) and not isinstance(value, bool), name
        elif facts["type"] == "number":
            assert isinstance(value, float), name
    assert step["outputs"] == {"mlflow_model_folder": "${{parent.outputs.trained_model}}"}
    assert data["outputs"] == {"trained_model": {"type": "mlflow_model"}}
    assert data["settings"] == {"force_rerun": True, "continue_on_step_failure": False}
    assert data["inputs"]["base_model"]["path"] == "azureml://registries/azureml/models/Phi-4/versions/8"


def test_model_defaults_merge_under_workspace_values_and_non_inputs_drop(repo_root: Path, repo_copy: Path) -> None:
    step = job(repo_root)["jobs"]["finetune"]["inputs"]
    assert step["apply_deepspeed"] == "true" and step["precision"] == "16"  # Phi-4's model-specific defaults
    assert step["deepspeed_stage"] == "3" and step["learning_rate"] == 5.0e-06
    assert "dropped (not component inputs)" not in rendered(repo_root)["jobs/finetune.yml"]
    prod = job(repo_root, "prod")["jobs"]["finetune"]["inputs"]
    assert prod["num_train_epochs"] == 3  # prod.yaml wins over the model default of 1
    switch_model(repo_copy, "Phi-3-mini-4k-instruct", 15)  # its registry defaults carry two non-inputs
    text = rendered(repo_copy)["jobs/finetune.yml"]
    step = yaml.safe_load(text)["jobs"]["finetune"]["inputs"]
    assert step["deepspeed_stage"] == "2" and "learning_rate_min" not in step and "learning_rate_max" not in step
    assert "dropped (not component inputs): learning_rate_max, learning_rate_min" in text


def test_workspace_value_wins_and_booleans_become_string_enums(repo_copy: Path) -> None:
    path = repo_copy / "workspaces" / "dev.yaml"
    path.write_text(
        path.read_text().replace(
            "  num_train_epochs: 1",
            "  num_train_epochs: 1\n  apply_deepspeed: false\n  precision: 32\n  adam_epsilon: 1.0e-08",
        )
    )
    text = rendered(repo_copy)["jobs/finetune.yml"]
    assert 'apply_deepspeed: "false"' in text and 'precision: "32"' in text and "adam_epsilon: 1.0e-08" in text
    assert "-nods-lora-" in yaml.safe_load(text)["display_name"]


def test_gpu_count_and_display_name_follow_the_sku_table(repo_copy: Path) -> None:
    path = repo_copy / "workspaces" / "dev.yaml"
    path.write_text(path.read_text() + "\ncompute:\n  cluster:\n    size: Standard_NC96ads_A100_v4\n")
    data = job(repo_copy)
    assert (
        data["jobs"]["finetune"]["inputs"]["number_of_gpu_to_use_finetuning"]
        == sku_gpus("Standard_NC96ads_A100_v4")
        == 4
    )
    assert data["display_name"] == "Phi-4-ultrachat-bs4-cosine-ds3-lora-save_limit1-seqlen2048"


def test_serverless_mode_sets_instance_types_and_drops_the_cluster(repo_copy: Path) -> None:
    path = repo_copy / "workspaces" / "dev.yaml"
    path.write_text(path.read_text() + "\ncompute:\n  mode: serverless\n")
    files = rendered(repo_copy)
    assert "compute/gpu-cluster.yml" not in files
    step = yaml.safe_load(files["jobs/finetune.yml"])["jobs"]["finetune"]["inputs"]
    assert step["compute_finetune"] == "serverless"
    assert step["instance_type_finetune"] == "Standard_NC24ads_A100_v4"


def test_cpu_sku_for_finetune_is_a_values_error(repo_copy: Path) -> None:
    path = repo_copy / "workspaces" / "dev.yaml"
    path.write_text(path.read_text() + "\ncompute:\n  cluster:\n    size: Standard_E4s_v3\n")
    with pytest.raises(UserError, match=r"workspaces/dev.yaml:\d+: compute.cluster.size: 'Standard_E4s_v3' has no GPU"):
        rendered(repo_copy)


def test_undefined_template_value_fails_loudly(repo_copy: Path) -> None:
    (repo_copy / "templates" / "jobs" / "broken.yml.j2").write_text("name: {{ values.no_such_thing }}\n")
    with pytest.raises(UserError, match="templates/jobs/broken.yml.j2: undefined value"):
        rendered(repo_copy)


def test_display_name_formula_matches_the_notebook() -> None:
    params = {
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "num_nodes_finetune": 2,
        "lr_scheduler_type": "linear",
        "apply_deepspeed": "false",
        "apply_lora": "false",
        "save_total_limit": -1,
    }
    assert display_name("Phi-4", params, 8) == "Phi-4-ultrachat-bs128-linear-nods-nolora-save_limit-1-seqlen-1"


@pytest.mark.parametrize(
    ("value", "text"), [(5e-06, "5.0e-06"), (1e-08, "1.0e-08"), (0.9, "0.9"), (1.0, "1.0"), (2e20, "2.0e+20")]
)
def test_floats_read_back_as_floats(value: float, text: str) -> None:
    assert format_float(value) == text
    assert yaml.safe_load(f"x: {text}") == {"x": value}


@pytest.mark.parametrize(
    "value", ["true", "16", "yes", "1e-8", "a: b", "#x", "", "${{parent.inputs.x}}", "azureml://x/y"]
)
def test_strings_read_back_as_the_same_strings(value: str) -> None:
    assert yaml.safe_load(f"x: {yaml_scalar(value)}") == {"x": value}


def test_prod_deployment_serves_the_registry_model(repo_root: Path) -> None:
    values = load_values("prod", repo_root)
    files = rendered(repo_root, "prod", repo_root / "build" / "prod")
    deployment = yaml.safe_load(files["endpoints/deployment.yml"])
    model = values.data["deployment"]["model"]
    assert (
        deployment["model"]
        == f"azureml://registries/{model['registry']}/models/{model['name']}/versions/{model['version']}"
    )
    assert deployment["instance_count"] >= 2
