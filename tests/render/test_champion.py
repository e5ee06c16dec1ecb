"""The evaluation's champion: what prod serves, the base model on the first promotion, never the candidate itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.core.repo import REPO_ROOT, select
from tools.render.derived import champion_model_uri
from tools.render.values import load_values

BASE = "azureml://registries/azureml/models/Base/versions/1"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    for folder in ("workspaces", "schemas"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    sft = tmp_path / "components" / "finetune-sft"
    sft.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "components" / "finetune-sft" / "inputs.yaml", sft)  # the SFT values' interface
    select(tmp_path)  # the champion's workspace is read from the active repo, as under --root
    return tmp_path


def served_version(root: Path, version: str) -> None:
    path = root / "workspaces" / "prod.yaml"
    text = path.read_text()
    old = "    name: phi4-ultrachat\n    version: 1\n"
    assert old in text
    path.write_text(text.replace(old, f"    name: phi4-ultrachat\n    version: {version}\n"))


def test_the_champion_is_the_version_prod_serves(root: Path) -> None:
    served_version(root, "3")
    assert champion_model_uri(load_values("dev"), BASE) == (
        "azureml://registries/contoso-ml-registry/models/phi4-ultrachat/versions/3")


def test_a_candidate_is_never_its_own_champion(root: Path) -> None:
    dev = load_values("dev")
    assert str(dev.data["registered_model"]["version"]) == "1"  # prod's values name that very version
    assert champion_model_uri(dev, BASE) == BASE


def test_the_base_model_when_prod_serves_nothing_from_a_registry(root: Path) -> None:
    path = root / "workspaces" / "prod.yaml"
    text = path.read_text()
    assert "    registry: contoso-ml-registry\n    name: phi4-ultrachat\n" in text
    path.write_text(text.replace("    registry: contoso-ml-registry\n    name: phi4-ultrachat\n",
                                 "    name: phi4-ultrachat\n"))  # fmt: skip
    assert champion_model_uri(load_values("dev"), BASE) == BASE
