"""Values files holding what YAML parses but cannot build, or numbers no spec can hold: one
``file:line: key: message`` line (UserError), never a bare ``nan: not a finite number`` or an internal error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.core.errors import UserError
from tools.core.repo import REPO_ROOT
from tools.render.values import load_values

DEV = (REPO_ROOT / "workspaces" / "dev.yaml").read_text(encoding="utf-8")
LEARNING_RATE = next(line for line in DEV.splitlines() if line.strip().startswith("learning_rate:"))
LINE = DEV.splitlines().index(LEARNING_RATE) + 1


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "workspaces").mkdir()
    shutil.copy2(REPO_ROOT / "workspaces" / "defaults.yaml", tmp_path / "workspaces" / "defaults.yaml")
    return tmp_path


def _refusal(root: Path, value: str) -> str:
    indent = LEARNING_RATE[: len(LEARNING_RATE) - len(LEARNING_RATE.lstrip())]
    text = DEV.replace(LEARNING_RATE, f"{indent}learning_rate: {value}")
    (root / "workspaces" / "bad.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_values("bad", root)
    return str(caught.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (".nan", "nan is not a finite number"),
        ("-.inf", "-inf is not a finite number"),
        ("1.0e+999", "inf is not a finite number"),
        ("2024-13-45", "reads as a date or time"),
        ("!!float abc", "cannot be read as !!float"),
        ("!!bool maybe", "cannot be read as !!bool"),
        ("9" * 5000, "int-string limit"),
    ],
)
def test_a_value_that_cannot_be_used_is_one_line_with_file_line_and_key(root: Path, value: str, words: str) -> None:
    message = _refusal(root, value)
    assert message.count("\n") == 0, message
    assert message.startswith(f"workspaces/bad.yaml:{LINE}: "), message
    assert "learning_rate" in message and words in message, message
    assert len(message) < 400
