"""Findings never echo an unbounded value (issue 13, 5b), and a model's local path must exist (5c)."""

from __future__ import annotations

from pathlib import Path

from tools.validate.document import parse_spec
from tools.validate.findings import ERROR, MAX_ECHO, Finding
from tools.validate.layers import validate_specs

BASE = "https://azuremlschemas.azureedge.net/latest/"


def _findings(tmp_path: Path, text: str, layers: str = "ABCD") -> list[Finding]:
    path = tmp_path / "spec.yml"
    path.write_text(text)
    return validate_specs([parse_spec(path, "spec.yml")], layers).findings


def test_a_long_echoed_value_or_key_is_cut() -> None:
    finding = Finding("a.yml", 3, ("tags", "k" * 5000), f"got {'x' * 100_000!r} here", "C")
    assert len(finding.text()) < 4 * MAX_ECHO + 40 and "..." in finding.message and finding.message.endswith("here")


def test_a_long_local_path_in_a_spec_gives_a_short_line(tmp_path: Path) -> None:
    text = f"$schema: {BASE}commandJob.schema.json\ntype: command\ncommand: echo\nenvironment: azureml:e:1\n" \
           f"code: ./{'d' * 20_000}\n"
    findings = _findings(tmp_path, text)
    assert findings and all(len(f.text()) < 1000 for f in findings)
    assert any(f.key == "code" and f.severity == ERROR for f in findings)


def test_a_missing_or_overlong_local_model_path_is_an_error(tmp_path: Path) -> None:
    spec = f"$schema: {BASE}model.schema.json\nname: my-model\nversion: '1'\ntype: custom_model\npath: {{}}\n"
    for path in ("./no-such-model", "./" + "m" * 300):
        errors = [f for f in _findings(tmp_path, spec.format(path), "ACD") if f.severity == ERROR]
        assert [f.key for f in errors] == ["path"], [f.text() for f in errors]
    (tmp_path / "model").mkdir()
    assert [f for f in _findings(tmp_path, spec.format("./model"), "ACD") if f.severity == ERROR] == []
