"""rules.files on literal dicts: local paths resolve from the spec's folder; URIs and expressions are skipped."""

from __future__ import annotations

from pathlib import Path

from tools.validate.rules import files


def test_missing_code_folder(run_rule, tmp_path: Path) -> None:
    data = {"type": "command", "command": "echo", "code": "./src", "environment": "azureml:e:1", "compute": "c"}
    found = run_rule(files.check, data, "commandJob", path=tmp_path / "job.yml")
    assert [(f[0], f[2]) for f in found] == [(("code",), "local-path")]
    (tmp_path / "src").mkdir()
    assert run_rule(files.check, data, "commandJob", path=tmp_path / "job.yml") == []


def test_uris_and_expressions_are_not_local(run_rule, tmp_path: Path) -> None:
    data = {"type": "pipeline", "inputs": {"a": {"type": "uri_file", "path": "azureml://datastores/x/paths/y"},
                                           "b": {"type": "uri_file", "path": "https://example.com/x.csv"},
                                           "c": {"type": "uri_file", "path": "${{parent.inputs.x}}"}}}  # fmt: skip
    assert run_rule(files.check, data, "pipelineJob", path=tmp_path / "p.yml") == []
