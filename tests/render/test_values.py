"""Workspace values: schema errors name the file, the line and the key path; merging keeps one source per value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.core.errors import UserError
from tools.render.values import deep_merge, load_values, workspace_names


@pytest.fixture()
def repo_copy(tmp_path: Path, repo_root: Path) -> Path:
    """A scratch copy of what values loading reads (workspaces/ and schemas/)."""
    for folder in ("workspaces", "schemas"):
        shutil.copytree(repo_root / folder, tmp_path / folder)
    return tmp_path


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / "workspaces" / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def error_of(root: Path, workspace: str = "dev") -> str:
    with pytest.raises(UserError) as caught:
        load_values(workspace, root)
    return str(caught.value)


def line_number(root: Path, name: str, needle: str) -> int:
    lines = (root / "workspaces" / name).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_every_workspace_loads(repo_root: Path) -> None:
    names = workspace_names(repo_root)
    assert names[0] == "dev" and "prod" in names
    for name in names:
        values = load_values(name, repo_root)
        assert values.data["workspace"]["name"]


def test_workspace_overrides_defaults_and_origin_is_tracked(repo_root: Path) -> None:
    values = load_values("prod", repo_root)
    assert values.data["compute"]["cluster"]["size"] == "Standard_NC96ads_A100_v4"  # prod.yaml
    assert values.data["compute"]["cluster"]["tier"] == "dedicated"  # defaults.yaml
    assert values.origin(("compute", "cluster", "size"))[0] == "workspaces/prod.yaml"
    assert values.origin(("compute", "cluster", "tier"))[0] == "workspaces/defaults.yaml"


def test_deep_merge_replaces_lists_and_merges_maps() -> None:
    merged = deep_merge({"a": {"x": 1, "y": [1, 2]}, "b": 1}, {"a": {"y": [3]}, "c": 2})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}


def test_typo_names_file_line_key_and_suggestion(repo_copy: Path) -> None:
    edit(repo_copy, "dev.yaml", "  learning_rate:", "  learnig_rate:")
    line = line_number(repo_copy, "dev.yaml", "learnig_rate")
    assert error_of(repo_copy) == (
        f"workspaces/dev.yaml:{line}: finetune.learnig_rate: unknown key (did you mean learning_rate?)"
    )


def test_unknown_key_deep_in_defaults(repo_copy: Path) -> None:
    edit(repo_copy, "defaults.yaml", "    idle_time_before_scale_down:", "    idle_time_before_scale_dwn:")
    line = line_number(repo_copy, "defaults.yaml", "idle_time_before_scale_dwn")
    message = error_of(repo_copy)
    assert message.startswith(
        f"workspaces/defaults.yaml:{line}: compute.cluster.idle_time_before_scale_dwn: unknown key"
    )
    assert "did you mean idle_time_before_scale_down?" in message


def test_wrong_type_and_bad_enum(repo_copy: Path) -> None:
    edit(repo_copy, "dev.yaml", "  per_device_train_batch_size: 1", "  per_device_train_batch_size: two")
    edit(repo_copy, "defaults.yaml", "  mode: cluster", "  mode: clustr")
    message = error_of(repo_copy)
    assert "workspaces/dev.yaml:" in message and "finetune.per_device_train_batch_size: expected integer" in message
    assert "compute.mode: expected one of cluster, serverless, got 'clustr'" in message
    assert len(message.splitlines()) == 2  # one line per problem


def test_derived_input_is_refused_with_its_source(repo_copy: Path) -> None:
    edit(repo_copy, "dev.yaml", "  num_train_epochs: 1", "  num_train_epochs: 1\n  number_of_gpu_to_use_finetuning: 4")
    assert "finetune.number_of_gpu_to_use_finetuning: not settable here: derived from the GPUs per node" in error_of(
        repo_copy
    )


def test_string_boolean_and_yaml_boolean_both_accepted_for_component_flags(repo_copy: Path) -> None:
    edit(
        repo_copy,
        "dev.yaml",
        "  num_train_epochs: 1",
        "  num_train_epochs: 1\n  apply_lora: false\n  apply_ort: 'true'",
    )
    values = load_values("dev", repo_copy)
    assert values.data["finetune"]["apply_lora"] is False
    edit(repo_copy, "dev.yaml", "  apply_lora: false", "  apply_lora: maybe")
    assert "finetune.apply_lora: expected true or false, got 'maybe'" in error_of(repo_copy)


def test_duplicate_key_in_values(repo_copy: Path) -> None:
    edit(repo_copy, "dev.yaml", "  num_train_epochs: 1", "  num_train_epochs: 1\n  num_train_epochs: 2")
    line = line_number(repo_copy, "dev.yaml", "num_train_epochs: 2")
    assert error_of(repo_copy).startswith(f"workspaces/dev.yaml:{line}: finetune.num_train_epochs: duplicate key")


def test_missing_required_key_and_unknown_workspace(repo_copy: Path) -> None:
    edit(repo_copy, "dev.yaml", "  name: mlw-ultrachat-dev\n", "")
    assert "workspace.name: required key is missing" in error_of(repo_copy)
    assert "unknown workspace 'prd' (did you mean prod?)" in error_of(repo_copy, "prd")


def test_yaml_syntax_error_has_a_line(repo_copy: Path) -> None:
    edit(repo_copy, "dev.yaml", "  name: ultrachat-phi4-dev", "  name: [ultrachat")
    assert error_of(repo_copy).startswith("workspaces/dev.yaml:")
    assert "YAML syntax" in error_of(repo_copy)


def test_subscription_and_resource_group_are_checked_before_any_plan_prints_them(repo_copy: Path) -> None:
    guid = "00000000-0000-0000-0000-000000000000"
    edit(repo_copy, "dev.yaml", f"  subscription_id: {guid}", "  subscription_id: " + "x" * 6000)
    edit(repo_copy, "dev.yaml", "  resource_group: rg-ultrachat-dev", "  resource_group: rg ultrachat.")
    lines = error_of(repo_copy).splitlines()
    assert len(lines) == 2 and all(line.startswith("workspaces/dev.yaml:") for line in lines)
    assert "workspace.subscription_id:" in lines[0] and len(lines[0]) < 400  # the value is cut, not echoed whole
    assert "workspace.resource_group:" in lines[1]
