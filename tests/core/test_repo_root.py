"""Whatever selects a repo root reads every fact from that root: a changed contract, catalog or SKU table in a
copy changes the outcome of a command run with ``--root COPY``, while this checkout's own run is unchanged."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.core.repo import REPO_ROOT, Repo, active, select

# What a plan reads: the values, templates and facts, the folders beside the rendered specs (code, data, flows, the
# tools/ a component ships through additional_includes), and
# every folder the templates render into that the default workspace has (templates/ mirrors the output tree).
COPIED = tuple(sorted({"workspaces", "templates", "schemas", "components", "data", "flows", "tools",
                       *(path.name for path in (REPO_ROOT / "templates").iterdir()
                         if path.is_dir() and (REPO_ROOT / path.name).is_dir())}))


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    for name in COPIED:
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("prepared", "__pycache__"))
    return root


def _plan(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools", "plan", "--workspace", "dev", "--root", str(root)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_contract_of_the_selected_root_decides(repo_copy: Path) -> None:
    assert _plan(repo_copy).returncode == 0
    # The copy's contract no longer has max_seq_length: the values schema generated from it must refuse the key.
    _edit(repo_copy / "schemas/contracts/chat_completion_pipeline.yaml",
          lambda c: c["inputs"].pop("max_seq_length"))
    result = _plan(repo_copy)
    assert result.returncode != 0
    assert "finetune.max_seq_length: unknown key" in result.stderr + result.stdout
    assert _plan(REPO_ROOT).returncode == 0  # this checkout's contract still has it


def test_sku_table_of_the_selected_root_decides(repo_copy: Path) -> None:
    # The copy's SKU table no longer knows the cluster's size: GPUs per node cannot be derived there.
    sku = yaml.safe_load((repo_copy / "workspaces/defaults.yaml").read_text())["compute"]["cluster"]["size"]
    _edit(repo_copy / "schemas/catalog/skus.yaml", lambda table: table["skus"].pop(sku))
    result = _plan(repo_copy)
    assert result.returncode != 0
    assert sku in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert Repo(repo_copy).sku_gpus(sku) is None and Repo(REPO_ROOT).sku_gpus(sku)


def test_select_switches_every_fact() -> None:
    original = active()
    try:
        chosen = select(REPO_ROOT / "tests")  # a root without facts: reading one must fail there, not fall back
        assert active() is chosen and chosen.root == (REPO_ROOT / "tests").resolve()
        with pytest.raises(FileNotFoundError):
            chosen.models()
    finally:
        select(original.root)
    assert active().models()
