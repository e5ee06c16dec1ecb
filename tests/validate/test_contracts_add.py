"""`python -m tools contracts add SPEC`: a contract from a published component spec or `az ml component show` JSON,
written into the selected repo's schemas/contracts/ and then used by layer D."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tools.core.errors import UserError
from tools.core.repo import REPO_ROOT, select
from tools.schemas.contracts import add

SPEC = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: tiny_tool
version: 0.0.3
type: command
inputs:
  mode: {type: string, enum: [fast, slow], default: fast}
  flag: {type: string, enum: [true, false], default: "true"}
  steps: {type: integer, min: 1, optional: true}
outputs:
  out: {type: uri_folder}
command: echo
"""


@pytest.fixture
def repo(tmp_path: Path):
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "schemas", root / "schemas")
    select(root)
    yield root
    select(None)


def test_from_spec_yaml(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    target = add(tmp_path / "spec.yaml", "azureml")
    contract = yaml.safe_load(target.read_text())
    assert target == repo / "schemas" / "contracts" / "tiny_tool.yaml"
    assert contract["version"] == "0.0.3" and list(contract["inputs"]) == ["mode", "flag", "steps"]
    assert contract["inputs"]["flag"]["enum"] == ["true", "false"] and contract["inputs"]["steps"]["min"] == 1
    assert contract["outputs"] == {"out": {"type": "uri_folder"}}


def test_from_az_show_json(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "show.json").write_text(json.dumps(yaml.safe_load(SPEC)))
    assert yaml.safe_load(add(tmp_path / "show.json", "myreg").read_text())["registry"] == "myreg"


def test_not_a_component_is_one_line(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("name: x\n")
    with pytest.raises(UserError, match="version: missing"):
        add(tmp_path / "x.yaml", "azureml")
