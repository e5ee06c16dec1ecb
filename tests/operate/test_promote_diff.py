"""promote on a scratch git copy of the repo (never the real workspaces/prod.yaml): only the prod values and the
prod render change, comments stay, prod then passes the prod policy, a second run changes nothing; `labels/latest`
in prod fails with one precise line; --execute talks to the semantic stand-in az. diff between revisions and
workspaces."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.render.engine import render
from tools.validate.cli import validate_workspace

SUB = "00000000-0000-0000-0000-000000000000"
DEV = ["-g", "rg-ultrachat-dev", "-w", "mlw-ultrachat-dev", "--subscription", SUB]
FAST = ("--layers", "ACD")
REGISTRY = "contoso-ml-registry"


def git(root: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(root), *argv], check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def git_repo(scratch_repo: Path, repo_root: Path) -> Path:
    shutil.copy(repo_root / ".gitignore", scratch_repo / ".gitignore")
    git(scratch_repo, "init", "-q", "-b", "main")
    git(scratch_repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", ".")
    git(scratch_repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "base")
    return scratch_repo


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def promote(cli, root: Path, *argv: str):
    return cli("promote", "--model", "phi4-ultrachat:7", "--from", "dev", "--to", "prod", "--root", str(root),
               *FAST, *argv)  # fmt: skip


def test_promotion_changes_only_prod_values_and_prod_render(git_repo, tools_cli) -> None:
    render("prod", git_repo).write()  # build/prod (ignored by git): what `az ml -f` reads
    assert validate_workspace("prod", "ACD", git_repo).errors == 0
    build_before = snapshot(git_repo / "build" / "prod")
    values_before = (git_repo / "workspaces" / "prod.yaml").read_text()

    code, out, err = promote(tools_cli, git_repo)
    assert code == 0, err
    assert git(git_repo, "status", "--porcelain") == " M workspaces/prod.yaml\n"
    values_after = (git_repo / "workspaces" / "prod.yaml").read_text()
    changed = [(a, b) for a, b in zip(values_before.splitlines(), values_after.splitlines(), strict=True) if a != b]
    assert changed == [("    version: 1", "    version: 7")]  # comments, order and layout kept
    build_after = snapshot(git_repo / "build" / "prod")
    changed_files = [k for k in build_after if build_after[k] != build_before.get(k)]
    # the deployment serves the promoted version; the evaluation's champion (what prod serves) follows it
    assert "endpoints/deployment.yml" in changed_files
    assert set(changed_files) <= {"endpoints/deployment.yml", "jobs/evaluate.yml"}
    uri = f"azureml://registries/{REGISTRY}/models/phi4-ultrachat/versions/7"
    assert f"model: {uri}" in build_after["endpoints/deployment.yml"]
    assert "-    version: 1\n+    version: 7\n" in out  # the values diff
    assert "+++ b/build/prod/endpoints/deployment.yml" in out and f"+model: {uri}" in out  # the rendered diff
    assert "promote: prod validates (policy prod)" in out
    assert "az ml model share --name phi4-ultrachat --version 7 --registry-name contoso-ml-registry" in out
    assert validate_workspace("prod", "ACD", git_repo).errors == 0

    code, out, err = promote(tools_cli, git_repo)  # idempotent
    assert code == 0, err
    assert "prod already deploys " + uri + ": no change" in out
    assert (git_repo / "workspaces" / "prod.yaml").read_text() == values_after


def test_labels_latest_in_prod_fails_with_one_precise_line(git_repo, tools_cli) -> None:
    defaults = git_repo / "workspaces" / "defaults.yaml"
    text = defaults.read_text()
    assert "    version: 0.0.82\n" in text
    defaults.write_text(text.replace("    version: 0.0.82\n", "    label: latest\n", 1))
    render("prod", git_repo).write()
    assert validate_workspace("dev", "ACD", git_repo).errors == 0  # the default policy allows labels
    report = validate_workspace("prod", "ACD", git_repo)
    errors = [f.text() for f in report.findings if f.severity == "error"]
    uri = "azureml://registries/azureml/components/chat_completion_pipeline/labels/latest"
    job = (git_repo / "build" / "prod" / "jobs" / "finetune.yml").read_text().splitlines()
    line = next(n for n, text in enumerate(job, 1) if text.strip() == f"component: {uri}")
    assert errors == [
        f"build/prod/jobs/finetune.yml:{line}: jobs.finetune.component: prod policy: pin a version instead of "
        f"labels/latest ({uri})"
    ]
    code, out, err = promote(tools_cli, git_repo)  # the promotion itself cannot make prod valid
    assert code == 1 and "prod policy: pin a version instead of labels/latest" in err


def test_execute_shows_then_shares_into_the_registry(git_repo, cloud, tools_cli) -> None:
    cloud.az("ml", "model", "create", "-f", str(git_repo / "models/finetuned-model.yml"), "--version", "7",
             "--path", "azureml://jobs/j/outputs/trained_model", *DEV)  # fmt: skip
    cloud.az("ml", "model", "update", "--name", "phi4-ultrachat", "--version", "7", "--set",
             "tags.eval_verdict=pass", *DEV)  # evaluated (tests/operate/test_gate.py: the evaluate stage sets it)
    code, out, err = promote(tools_cli, git_repo, "--execute")
    assert code == 0, err
    assert cloud.argvs() == [
        ["ml", "model", "show", "--name", "phi4-ultrachat", "--version", "7", *DEV, "-o", "json"],
        ["ml", "model", "show", "--name", "phi4-ultrachat", "--version", "7", "--registry-name", REGISTRY,
         "-o", "json"],
        ["ml", "model", "share", "--name", "phi4-ultrachat", "--version", "7", "--registry-name", REGISTRY,
         "--share-with-name", "phi4-ultrachat", "--share-with-version", "7", *DEV],
    ]  # fmt: skip
    shared = ("ml", "model", "show", "--name", "phi4-ultrachat", "--version", "7", "--registry-name", REGISTRY)
    assert cloud.show(*shared) is not None
    cloud.forget_calls()
    code, out, err = promote(tools_cli, git_repo, "--execute")  # the registry has it now: no second share
    assert code == 0, err
    assert [c[2] for c in cloud.argvs()] == ["show", "show"] and "no change" in out
    assert "unchanged (the registry has this version)" in out


def test_execute_with_a_missing_version_stops_with_one_line(git_repo, cloud, tools_cli) -> None:
    before = (git_repo / "workspaces" / "prod.yaml").read_text()
    code, out, err = promote(tools_cli, git_repo, "--execute")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: phi4-ultrachat:7 not found (az ml model show --name phi4-ultrachat --version 7 "
        + " ".join(DEV) + " exited 1): "
    ) and "ResourceNotFound" in lines[0]  # fmt: skip
    assert (git_repo / "workspaces" / "prod.yaml").read_text() == before and len(cloud.calls()) == 1


def test_bad_model_reference_is_one_line(git_repo, tools_cli) -> None:
    code, _, err = tools_cli("promote", "--model", "phi3", "--root", str(git_repo))
    assert code == 2 and err.strip() == "error: --model phi3: expected NAME:VERSION (e.g. phi4-ultrachat:3)"


def test_diff_against_base_revision(git_repo, tools_cli) -> None:
    code, out, _ = tools_cli("diff", "--workspace", "prod", "--base", "HEAD", "--root", str(git_repo))
    assert (code, out) == (0, "")
    values = git_repo / "workspaces" / "prod.yaml"
    values.write_text(values.read_text().replace("instance_count: 2", "instance_count: 3"))
    code, out, _ = tools_cli("diff", "--workspace", "prod", "--base", "HEAD", "--root", str(git_repo), "--exit-code")
    assert code == 1
    assert out.splitlines()[:2] == ["--- a/HEAD/endpoints/deployment.yml", "+++ b/endpoints/deployment.yml"]
    assert "-instance_count: 2\n+instance_count: 3\n" in out and out.count("+++ b/") == 1


def test_diff_new_workspace_and_bad_revision(git_repo, tools_cli) -> None:
    shutil.copy(git_repo / "workspaces" / "prod.yaml", git_repo / "workspaces" / "staging.yaml")
    code, out, _ = tools_cli("diff", "--workspace", "staging", "--root", str(git_repo))
    assert code == 0 and "--- /dev/null\n+++ b/endpoints/deployment.yml" in out
    code, _, err = tools_cli("diff", "--workspace", "prod", "--base", "no-such-rev", "--root", str(git_repo))
    assert code == 2 and "--base no-such-rev: not a git revision" in err


def test_diff_between_workspaces(git_repo, tools_cli) -> None:
    code, out, _ = tools_cli("diff", "--workspace", "dev", "--against", "dev", "--root", str(git_repo))
    assert (code, out) == (0, "")
    code, out, _ = tools_cli("diff", "--workspace", "dev", "--against", "prod", "--root", str(git_repo))
    assert code == 0 and "--- a/dev/endpoints/deployment.yml\n+++ b/prod/endpoints/deployment.yml" in out
    assert "-instance_count: 1\n+instance_count: 2\n" in out
    assert "../../../data" not in out  # rendered into the same folder: relative paths do not show as changes


def test_diff_base_revision_renders_with_its_own_tools(repo_root: Path, tmp_path: Path) -> None:
    """A real clone carries tools/: the base revision is rendered by its own code, values and schemas."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(repo_root), str(clone)], check=True)
    values = clone / "workspaces" / "prod.yaml"
    values.write_text(values.read_text().replace("instance_count: 2", "instance_count: 4"))
    result = subprocess.run(
        [sys.executable, "-m", "tools", "diff", "--workspace", "prod", "--base", "HEAD", "--exit-code"],
        cwd=clone,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "-instance_count: 2" in result.stdout and "+instance_count: 4" in result.stdout
