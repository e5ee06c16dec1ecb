"""The generated catalog drives validation: a job on a retired model is flagged with its active alternative, Phi-4
on a size of its allow-list passes --strict, a size off the list is refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.render.engine import render


@pytest.fixture()
def repo_copy(tmp_path: Path, repo_root: Path) -> Path:
    for folder in ("workspaces", "schemas", "templates", "data/sample"):
        shutil.copytree(repo_root / folder, tmp_path / folder)
    return tmp_path


def validate_job(root: Path, repo_root: Path, model: str, version: int, size: str) -> subprocess.CompletedProcess:
    path = root / "workspaces" / "dev.yaml"
    path.write_text(
        path.read_text()
        + f"\nmodel:\n  registry: azureml\n  name: {model}\n  version: {version}\n"
        + f"compute:\n  cluster:\n    size: {size}\n"
    )
    render("dev", root=root, out_dir=root).write()
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tools",
            "validate",
            str(root / "jobs" / "finetune.yml"),
            str(root / "compute"),
            "--strict",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_job_on_phi_3_small_is_flagged_retired(repo_copy: Path, repo_root: Path) -> None:
    result = validate_job(repo_copy, repo_root, "Phi-3-small-8k-instruct", 6, "Standard_NC96ads_A100_v4")
    assert result.returncode == 1
    assert (
        "inputs.base_model.path: Phi-3-small-8k-instruct is RETIRED (fine-tuning and inference retired on "
        "2025-08-30)" in result.stdout
    )
    assert "active alternatives: Phi-4" in result.stdout


def test_phi_4_on_nd96asr_v4_is_accepted(repo_copy: Path, repo_root: Path) -> None:
    result = validate_job(repo_copy, repo_root, "Phi-4", 8, "Standard_ND96asr_v4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "number_of_gpu_to_use_finetuning: 8" in (repo_copy / "jobs" / "finetune.yml").read_text()


def test_phi_4_off_its_allow_list_is_refused(repo_copy: Path, repo_root: Path) -> None:
    result = validate_job(repo_copy, repo_root, "Phi-4", 8, "Standard_ND40rs_v2")
    assert result.returncode == 1
    assert "Standard_ND40rs_v2 is not on Phi-4's fine-tuning allow-list" in result.stdout
