"""plan and apply against the semantic stand-in `az`: command order and arguments, job-name threading, show-first
(created / updated / unchanged), the model-version guard before a submission, failed and canceled jobs, the get-logs
hint of a failed deployment, the --yes refusal, and the printed plan."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.operate.output import captured, joined, outcomes, overlong
from tools.core.errors import UserError
from tools.operate.stages import STAGES, build_plan, job_specs, parse_stages
from tools.operate.steps import free_variables, shell_word
from tools.operate.workspace import load_workspace

SUB = "00000000-0000-0000-0000-000000000000"
DEV = ["-g", "rg-ultrachat-dev", "-w", "mlw-ultrachat-dev", "--subscription", SUB]
ENDPOINT = "ultrachat-phi4-dev"
# The SDK layer (B) is the validation tests' subject; the real-repo plan below runs all four layers.
FAST = ("--layers", "ACD")


def apply(cli, root: Path, *argv: str):
    return cli("apply", "--workspace", "dev", "--root", str(root), *FAST, *argv)


def test_bootstrap_creates_identity_then_assigns_roles_on_resolved_scopes(scratch_repo, cloud, tools_cli) -> None:
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "bootstrap", "--execute")
    assert code == 0, err
    argvs = cloud.argvs()  # the whole stage: tests/platform/test_bootstrap.py
    principal = cloud.show("identity", "show", "--name", "uami-ultrachat", "-g", "rg-ultrachat-dev")["principalId"]
    mine = [a for a in argvs if a[:3] == ["role", "assignment", "create"] and principal in a]
    assert all(a[a.index("--assignee-object-id") + 1] == principal for a in mine)
    scopes = [a[a.index("--scope") + 1] for a in mine]
    assert "Microsoft.Storage/storageAccounts/" in scopes[0] and "Microsoft.ContainerRegistry/" in scopes[1]
    assert all(s.startswith(f"/subscriptions/{SUB}/resourceGroups/") for s in scopes)
    assert f"PRINCIPAL_ID={principal}" in out


def test_all_stages_run_in_order_and_thread_the_job_name(scratch_repo, cloud, tools_cli) -> None:
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "all", "--execute", "--yes")
    assert code == 0, err
    argvs = cloud.argvs()
    submit = next(i for i, a in enumerate(argvs) if a[:3] == ["ml", "job", "create"])
    assert argvs[submit] == ["ml", "job", "create", "-f", "jobs/finetune.yml", *DEV, "--query", "name", "-o", "tsv"]
    job = captured(out, "JOB_NAME")
    register = next(a for a in argvs if a[:3] == ["ml", "model", "create"])
    assert register == ["ml", "model", "create", "-f", "models/finetuned-model.yml",
                        "--path", f"azureml://jobs/{job}/outputs/trained_model", *DEV]  # fmt: skip
    creates = [" ".join(a[:2]) for a in argvs if len(a) > 2 and a[2] == "create"]
    assert creates.index("ml compute") < creates.index("ml data") < creates.index("ml job")
    # the registry pipeline uses neither our environment nor a component of ours: only the evaluation does
    assert creates.index("ml model") < creates.index("ml environment") < creates.index("ml component")
    assert creates.count("ml job") == 2 and creates.index("ml component") < len(creates) - 1 - creates[::-1].index(
        "ml job") < creates.index("ml online-endpoint")  # fmt: skip
    assert creates.index("ml job") < creates.index("ml model") < creates.index("ml online-endpoint")
    assert creates[-1] == "ml online-deployment" and argvs[-1][:3] == ["ml", "online-endpoint", "delete"]
    guard = ["ml", "model", "show", "--name", "phi4-ultrachat", "--version", "1", *DEV]
    assert any(a[: len(guard)] == guard for a in argvs[:submit])  # the version is free before the submission
    assert "apply: dev:" in out


def test_a_second_train_run_stops_before_submitting_when_the_model_version_exists(scratch_repo, cloud,
                                                                                   tools_cli) -> None:
    assert apply(tools_cli, scratch_repo, "--stage", "train,register", "--execute")[0] == 0
    cloud.forget_calls()
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "train,register", "--execute")
    assert code == 1
    assert ("model phi4-ultrachat:1 already exists in mlw-ultrachat-dev and model versions are immutable: bump "
            "registered_model.version in workspaces/dev.yaml, or rerun with --next-model-version") in err
    assert not [a for a in cloud.argvs() if a[:3] == ["ml", "job", "create"]]
    said = outcomes(out)  # compute and data assets: already there
    assert said["train.compute-gpu-a100"] == "unchanged"
    data = [o for step, o in said.items() if step.startswith("train.data-")]
    immutable = "unchanged (exists; versions are immutable: a changed spec needs a new version)"
    assert len(data) >= 2 and set(data) == {immutable}
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "train,register", "--execute", "--next-model-version")
    assert code == 0, err
    assert "registered_model:\n  name: phi4-ultrachat\n  version: 2" in (
        scratch_repo / "workspaces" / "dev.yaml").read_text() or "version: 2" in (
        scratch_repo / "workspaces" / "dev.yaml").read_text()  # fmt: skip
    assert cloud.show("ml", "model", "show", "--name", "phi4-ultrachat", "--version", "2", *DEV) is not None


def test_compute_scale_change_is_an_update(scratch_repo, cloud, tools_cli) -> None:
    assert apply(tools_cli, scratch_repo, "--stage", "train", "--execute")[0] == 0
    values = scratch_repo / "workspaces" / "dev.yaml"
    values.write_text(values.read_text() + "\ncompute:\n  cluster:\n    max_instances: 2\n")
    from tools.render.engine import render

    render("dev", scratch_repo).write()
    cloud.forget_calls()
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "train", "--execute", "--next-model-version")
    assert code == 0, err
    assert "updated (max_instances)" in out
    assert cloud.show("ml", "compute", "show", "--name", "gpu-a100", *DEV)["max_instances"] == 2


def test_failed_or_canceled_job_stops_before_registration(scratch_repo, cloud, tools_cli) -> None:
    for status in ("Failed", "Canceled"):
        cloud.job_outcomes(status)
        code, _, err = apply(tools_cli, scratch_repo, "--stage", "train,register", "--execute")
        assert code == 1 and f"JOB_STATUS is {status}, expected Completed" in err
        assert not [a for a in cloud.argvs() if a[:3] == ["ml", "model", "create"]]


def test_failed_deployment_prints_get_logs_for_both_containers(scratch_repo, cloud, tools_cli) -> None:
    cloud.az("ml", "model", "create", "-f", str(scratch_repo / "models/finetuned-model.yml"), "--path",
             "azureml://jobs/j/outputs/trained_model", *DEV)  # fmt: skip
    cloud.fail_deployments("blue")
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "deploy,smoke,teardown", "--execute", "--yes")
    assert code == 1
    base = f"az ml online-deployment get-logs --name blue --endpoint-name {ENDPOINT} {' '.join(DEV)}"
    assert f"hint: {base} --container inference-server --lines 200" in err
    assert f"hint: {base} --container storage-initializer --lines 200" in err
    assert "error: step deploy.deployment-blue: create deployment blue on ultrachat-phi4-dev failed (exit 1)" in err
    assert [a[:3] for a in cloud.argvs()][-1] == ["ml", "online-deployment", "create"]  # no invoke, no delete


def test_destructive_steps_are_refused_without_yes_before_anything_runs(scratch_repo, cloud, tools_cli) -> None:
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "all", "--execute")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "error: refusing to run destructive steps without --yes: teardown.endpoint-delete (nothing was run)"
    )
    assert cloud.calls() == []


def test_dry_run_prints_the_plan_and_runs_nothing(scratch_repo, cloud, tools_cli) -> None:
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "all")
    assert code == 0 and cloud.calls() == []
    assert "JOB_NAME=$(az ml job create -f jobs/finetune.yml" in joined(out)
    assert re.search(r"dry run: \d+ steps planned", err) and "teardown.endpoint-delete will need --yes" in err


def test_register_alone_needs_the_job_name(scratch_repo, cloud, tools_cli) -> None:
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "register", "--execute")
    assert code == 2 and "need JOB_NAME: pass --job-name NAME" in err and cloud.calls() == []
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "register", "--execute", "--job-name", "given_job_1")
    assert code == 0, err
    assert cloud.argvs()[-1] == ["ml", "model", "create", "-f", "models/finetuned-model.yml",
                                 "--path", "azureml://jobs/given_job_1/outputs/trained_model", *DEV]  # fmt: skip


def test_missing_sample_request_is_named_before_invoking(scratch_repo, cloud, tools_cli) -> None:
    (scratch_repo / "endpoints" / "sample_score.json").unlink()
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "smoke", "--execute")
    assert code == 2 and cloud.calls() == []
    assert "endpoints/sample_score.json does not exist (write it with: python -m tools score sample-request)" in err


def test_plan_refuses_a_workspace_with_validation_errors(scratch_repo, tools_cli) -> None:
    deployment = scratch_repo / "endpoints" / "deployment.yml"
    values = scratch_repo / "workspaces" / "dev.yaml"
    values.write_text(values.read_text() + "\ndeployment:\n  instance_type: Standard_D2s_v3\n")
    from tools.render.engine import render_workspace, write_rendered

    write_rendered(render_workspace("dev", scratch_repo, scratch_repo), scratch_repo)
    assert "Standard_D2s_v3" in deployment.read_text()
    code, out, err = tools_cli("plan", "--workspace", "dev", "--root", str(scratch_repo), *FAST)
    assert code == 2 and out == ""
    assert "endpoints/deployment.yml:" in err and "refusing to plan" in err.strip().splitlines()[-1]


def test_plan_refuses_a_stale_committed_render(scratch_repo, tools_cli) -> None:
    job = scratch_repo / "jobs" / "finetune.yml"
    job.write_text(job.read_text().replace("num_train_epochs: 1", "num_train_epochs: 9"))
    code, _, err = tools_cli("plan", "--workspace", "dev", "--root", str(scratch_repo), *FAST)
    assert code == 2 and "committed specs differ from the templates" in err


def test_stage_parsing_and_free_variables(scratch_repo) -> None:
    assert parse_stages("all") == list(STAGES)
    assert parse_stages("smoke,deploy") == ["deploy", "smoke"]
    with pytest.raises(UserError, match="expected all or a comma-separated list"):
        parse_stages("deploy,ship")
    ws = load_workspace("dev", scratch_repo, "ACD")
    assert free_variables(build_plan(ws, ["register"])) == ["JOB_NAME"]
    assert free_variables(build_plan(ws, list(STAGES))) == []
    assert shell_word("azureml://jobs/${JOB_NAME}/outputs/x") == '"azureml://jobs/${JOB_NAME}/outputs/x"'
    assert shell_word("Storage Blob Data Reader") == "'Storage Blob Data Reader'"


def test_prod_plan_points_at_the_build_render(tmp_path, make_repo) -> None:
    root = make_repo(tmp_path / "repo")
    ws = load_workspace("prod", root, "ACD")
    steps = build_plan(ws, ["deploy"])
    assert steps[1].spec == "build/prod/endpoints/deployment.yml" and (root / steps[1].spec).is_file()
    assert steps[1].action == "rollout" and any("58 standardNCADSA100v4Family vCPUs" in n for n in steps[1].notes)
    assert "-w" in steps[1].argv and "mlw-ultrachat-prod" in steps[1].argv


def test_real_repo_plan_all_is_complete_and_every_file_validates(repo_root: Path) -> None:
    """Acceptance: the committed dev plan, with every validation layer; its -f files exist and validate."""
    result = subprocess.run(
        [sys.executable, "-m", "tools", "plan", "--workspace", "dev", "--stage", "all"],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert overlong(result.stdout) == []  # long commands continue on the next line
    printed = joined(result.stdout).splitlines()
    commands = [line for line in printed if re.search(r"(^|\$\(|\|\| )\s*az ", line)]
    files = [m for line in commands for m in re.findall(r" -f (\S+)", line)]
    assert files and all((repo_root / f).is_file() for f in files)
    order = ["identity create", "role assignment", "ml compute create", "ml job create", "ml job stream",
             "ml model create", "ml online-endpoint create", "ml online-deployment create",
             "ml online-endpoint invoke", "ml online-endpoint delete"]  # fmt: skip
    positions = [next(i for i, line in enumerate(commands) if f"az {word}" in line) for word in order]
    assert positions == sorted(positions)
    check = subprocess.run(
        [sys.executable, "-m", "tools", "validate", *sorted(set(files))], cwd=repo_root, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    shlex.split(result.stdout.replace("\\\n", " "), comments=True)  # parses as shell words


def test_job_option_submits_another_rendered_job(scratch_repo, cloud, tools_cli) -> None:
    ws = load_workspace("dev", scratch_repo, "ACD")
    others = [s.path for s in job_specs(ws) if s.path != "jobs/finetune.yml"]
    assert "jobs/finetune-sft.yml" in others  # our SFT path's job
    others = ["jobs/finetune-sft.yml"]
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "train", "--execute", "--job", others[0])
    assert code == 0, err
    submits = [c for c in cloud.argvs() if c[:3] == ["ml", "job", "create"]]
    assert submits == [["ml", "job", "create", "-f", others[0], *DEV, "--query", "name", "-o", "tsv"]]
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "train", "--job", "jobs/nope.yml")
    assert code == 2 and "--job jobs/nope.yml: not a rendered job spec of dev" in err


def test_plan_prints_both_branches_of_the_deployment_step(tmp_path, make_repo, tools_cli) -> None:
    root = make_repo(tmp_path / "repo")
    code, out, err = tools_cli("plan", "--workspace", "prod", "--root", str(root), *FAST, "--stage", "deploy")
    assert code == 0, err
    subprocess.run(["bash", "-n"], input=out, text=True, check=True)  # the plan parses as bash
    assert overlong(out) == []
    out = joined(out)
    branch = out[out.index('if [ -z "${LIVE}" ]; then'):]
    new_endpoint, live = branch.split("\nelse\n", 1)
    assert "--name blue" in new_endpoint and new_endpoint.rstrip().endswith("--all-traffic")
    live = live[: live.index("\nfi\n")]
    lines = [line.strip() for line in live.splitlines() if not line.strip().startswith("#")]
    assert lines[0] == 'if [ "${LIVE}" = blue ]; then NEW=green; else NEW=blue; fi'
    assert lines[1].startswith('az ml online-deployment create -f build/prod/endpoints/deployment.yml --name "${NEW}"')
    assert "--all-traffic" not in lines[1]
    assert "--query provisioning_state -o tsv)\" = Succeeded" in lines[2]
    assert '--deployment-name "${NEW}"' in lines[3]
    shifts = [line for line in lines if "--traffic" in line]
    assert [s.split('--traffic "')[1].split('"')[0] for s in shifts] == [
        "${LIVE}=90 ${NEW}=10", "${LIVE}=50 ${NEW}=50", "${LIVE}=0 ${NEW}=100"]  # fmt: skip
    first_shift = lines.index(shifts[0])
    assert all("invoke" in lines[i] for i in (first_shift + 1, first_shift + 2))  # smoke between steps
    assert lines[-1].startswith('az ml online-deployment delete --name "${LIVE}"')  # keep_old: false
