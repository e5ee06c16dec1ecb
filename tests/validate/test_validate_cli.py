"""The validate CLI: scopes (paths, folders, workspaces), output formats for CI, --strict, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest


def validate(repo_root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools", "validate", *args], cwd=repo_root, capture_output=True,
                          text=True)  # fmt: skip


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    folder = tmp_path_factory.mktemp("specs")
    text = (repo_root / "endpoints" / "deployment.yml").read_text()
    (folder / "deployment.yml").write_text(text.replace("instance_count: 1", "instance_count: 0"))
    (folder / "notes.yaml").write_text("just: a yaml file without a schema line\n")
    return folder


def test_every_workspace_passes_with_a_status_per_file_and_a_summary(repo_root: Path) -> None:
    result = validate(repo_root)
    assert result.returncode == 0, result.stdout
    assert " - managedOnlineDeployment is valid" in result.stdout
    assert "Summary: " in result.stderr and "Invalid: 0" in result.stderr


def test_workspace_validation_works_from_a_clean_build_and_rewrites_nothing_unchanged(repo_root: Path,
                                                                                      tmp_path: Path) -> None:
    """A fresh clone has no build/prod: validation must not depend on an earlier render, and a second run
    leaves the build tree's files untouched (only what differs is written)."""
    marker = repo_root / "build" / "prod"
    aside = tmp_path / "prod-aside"
    if marker.exists():
        shutil.move(marker, aside)
    try:
        first = validate(repo_root, "--workspace", "prod", "--quiet")
        assert first.returncode == 0, first.stdout + first.stderr
        before = {p: p.stat().st_mtime_ns for p in marker.rglob("*.yml")}
        assert before, "the prod render is not on disk for az ml -f"
        assert validate(repo_root, "--workspace", "prod", "--quiet").returncode == 0
        after = {p: p.stat().st_mtime_ns for p in marker.rglob("*.yml")}
        assert after == before, "validate --workspace rewrote unchanged files"
    finally:
        if aside.exists():
            shutil.rmtree(marker, ignore_errors=True)
            shutil.move(aside, marker)


def test_a_folder_stands_for_its_specs(repo_root: Path, broken: Path) -> None:
    result = validate(repo_root, str(broken))
    assert result.returncode == 1
    assert (
        f"{broken / 'deployment.yml'}:" in result.stdout and "instance_count: expected an integer >= 1" in result.stdout
    )
    assert "notes.yaml" not in result.stdout + result.stderr  # no $schema line: not a spec


def test_json_report(repo_root: Path, broken: Path) -> None:
    report = json.loads(validate(repo_root, str(broken / "deployment.yml"), "--format", "json").stdout)
    assert report["errors"] >= 1
    finding = next(f for f in report["findings"] if f["key_path"] == "instance_count")
    assert finding["layer"] in "ABCD" and finding["severity"] == "error" and finding["line"] > 1


def test_junit_report_for_ci(repo_root: Path, broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    result = validate(repo_root, str(broken / "deployment.yml"), "--format", "junit", "--output", str(out))
    assert result.returncode == 1
    suite = ET.parse(out).getroot()
    assert suite.tag == "testsuite" and int(suite.get("failures")) >= 1
    assert any("instance_count" in (f.get("message") or "") for f in suite.iter("failure"))


def test_github_annotations(repo_root: Path, broken: Path) -> None:
    lines = validate(repo_root, str(broken / "deployment.yml"), "--format", "github").stdout.splitlines()
    assert any(line.startswith("::error file=") and ",line=" in line and "instance_count" in line for line in lines)


def test_bad_arguments_are_one_line(repo_root: Path) -> None:
    result = validate(repo_root, "--layers", "XYZ")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "--layers" in result.stderr
    missing = validate(repo_root, "no/such/spec.yml")
    assert missing.returncode == 1 and "no/such/spec.yml: no such file" in missing.stdout


def test_sarif_report_for_code_scanning(repo_root: Path, broken: Path) -> None:
    report = json.loads(validate(repo_root, str(broken / "deployment.yml"), "--format", "sarif").stdout)
    assert report["version"] == "2.1.0"
    result = next(r for r in report["runs"][0]["results"] if "instance_count" in r["message"]["text"])
    assert result["level"] == "error" and result["locations"][0]["physicalLocation"]["region"]["startLine"] > 1
    rules = {rule["id"]: rule for rule in report["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in report["runs"][0]["results"]} <= set(rules)  # every result's rule is described
    for rule in rules.values():  # ids from schemas/rules.yaml, each with its summary and a real help page
        assert "/" not in rule["id"] and rule["shortDescription"]["text"]
        assert rule["helpUri"].startswith("https://learn.microsoft.com/"), rule
    assert "informationUri" not in report["runs"][0]["tool"]["driver"]  # no placeholder


def test_internal_failure_on_one_file_is_its_finding_and_exit_3(repo_root: Path, broken: Path,
                                                               monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import argparse

    from tools.validate import cli, layers

    def boom(kind, data, prepare=None):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(layers, "validate_against_schema", boom)  # the name layer C calls
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args([str(broken / "deployment.yml"), str(repo_root / "endpoints" / "endpoint.yml"),
                              "--layers", "ACD", "--no-cache"])  # fmt: skip
    assert cli.run(args) == 3
    out = capsys.readouterr().out
    assert out.count("internal error in layer C: RuntimeError: simulated bug") == 2  # both files, the run went on
    assert "instance_count: expected an integer >= 1" in out  # layer D still ran


def test_specs_only_skips_other_yaml(repo_root: Path, broken: Path) -> None:
    endpoint = str(repo_root / "endpoints" / "endpoint.yml")
    result = validate(repo_root, "--specs-only", str(broken / "notes.yaml"), endpoint)
    assert result.returncode == 0
    assert "notes.yaml - skipped: no $schema and no type of an az ml kind" in result.stdout + result.stderr
    assert "Skipped: 1" in result.stdout + result.stderr
