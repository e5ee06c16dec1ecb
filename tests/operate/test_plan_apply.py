"""plan and apply against a stand-in `az`: command order and arguments, job-name threading, reuse probes,
stop-on-failure with the exact command, the get-logs hint of a failed deployment, and the --yes refusal."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tools.core.errors import UserError
from tools.operate.plan import STAGES, build_plan, free_variables, load_workspace, parse_stages, shell_word

SUB = "00000000-0000-0000-0000-000000000000"
DEV = ["-g", "rg-ultrachat-dev", "-w", "mlw-ultrachat-dev", "--subscription", SUB]
ENDPOINT = "ultrachat-phi3-dev"
FAST = ("--layers", "ACD")  # the SDK layer (B) is covered by the validation tests and one real-repo plan below


def apply(cli, root: Path, *argv: str):
    return cli("apply", "--workspace", "dev", "--root", str(root), *FAST, *argv)


def expected_tail(job: str) -> list[list[str]]:
    """Every call after the job submission, in order, for `--stage all --execute --yes` on dev."""
    return [
        ["ml", "job", "stream", "--name", job, *DEV],
        ["ml", "job", "show", "--name", job, *DEV, "--query", "status", "-o", "tsv"],
        ["ml", "model", "create", "-f", "models/finetuned-model.yml",
         "--path", f"azureml://jobs/{job}/outputs/trained_model", *DEV],
        ["ml", "online-endpoint", "show", "--name", ENDPOINT, *DEV],
        ["ml", "online-endpoint", "create", "-f", "endpoints/endpoint.yml", *DEV],
        ["ml", "online-deployment", "create", "-f", "endpoints/deployment.yml", *DEV, "--all-traffic"],
        ["ml", "online-endpoint", "invoke", "--name", ENDPOINT, "--request-file", "endpoints/sample_score.json", *DEV],
        ["ml", "online-endpoint", "delete", "--name", ENDPOINT, *DEV, "--yes"],
    ]  # fmt: skip


def test_bootstrap_creates_identity_then_assigns_roles_on_resolved_scopes(scratch_repo, fake_az, tools_cli) -> None:
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "bootstrap", "--execute")
    assert code == 0, err
    principal = "11111111-2222-3333-4444-555555555555"
    storage = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stws"
    acr = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/crws"
    sub = ["--subscription", SUB]
    role = ["role", "assignment", "create", "--assignee-object-id", principal, "--assignee-principal-type",
            "ServicePrincipal", "--role"]  # fmt: skip
    assert fake_az.calls() == [
        ["identity", "create", "--name", "uami-ultrachat", "-g", "rg-ultrachat-dev", "--location", "eastus2", *sub,
         "--query", "principalId", "-o", "tsv"],
        ["ml", "workspace", "show", "--name", "mlw-ultrachat-dev", "-g", "rg-ultrachat-dev", *sub,
         "--query", "storage_account", "-o", "tsv"],
        ["ml", "workspace", "show", "--name", "mlw-ultrachat-dev", "-g", "rg-ultrachat-dev", *sub,
         "--query", "container_registry", "-o", "tsv"],
        [*role, "Contributor", "--scope", f"/subscriptions/{SUB}/resourceGroups/rg-ultrachat-dev", *sub],
        [*role, "Storage Blob Data Reader", "--scope", storage, *sub],
        [*role, "AcrPull", "--scope", acr, *sub],
    ]  # fmt: skip
    assert f"PRINCIPAL_ID={principal}" in out


def test_all_stages_run_in_order_and_thread_the_job_name(scratch_repo, fake_az, tools_cli) -> None:
    fake_az.set(job_name="plum_kettle_42")
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "all", "--execute", "--yes")
    assert code == 0, err
    calls = fake_az.calls()
    verbs = [" ".join(c[:3]) for c in calls]
    submit = calls.index(["ml", "job", "create", "-f", "jobs/finetune.yml", *DEV, "--query", "name", "-o", "tsv"])
    assert calls[submit + 1 :] == expected_tail("plum_kettle_42")
    # bootstrap first, then every train-stage resource before the job (probe, then create), compute first.
    assert verbs[:6] == ["identity create --name", *["ml workspace show"] * 2, *["role assignment create"] * 3]
    train = calls[6:submit]
    assert train[0][:3] == ["ml", "compute", "show"] and train[1][:3] == ["ml", "compute", "create"]
    for probe, create in zip(train[::2], train[1::2], strict=True):
        assert probe[2] == "show" and create[2] == "create" and probe[1] == create[1]
        assert create[3] == "-f" and (scratch_repo / create[4]).is_file()
    assert [c[4] for c in train[1::2] if c[1] == "data"] == ["data/test-sft.yml", "data/train-sft.yml"]
    assert "JOB_NAME=plum_kettle_42" in out and "apply: dev:" in out


def test_existing_resources_are_reused(scratch_repo, fake_az, tools_cli) -> None:
    fake_az.set(exists="ml compute show;ml data show;ml online-endpoint show")
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "train,deploy", "--execute")
    assert code == 0, err
    creates = [c[:3] for c in fake_az.calls() if c[2] == "create"]
    assert ["ml", "job", "create"] in creates and ["ml", "data", "create"] not in creates
    assert ["ml", "compute", "create"] not in creates and ["ml", "online-endpoint", "create"] not in creates
    assert creates[-1] == ["ml", "online-deployment", "create"]
    assert "exists, reused" in out


def test_failure_stops_at_the_step_naming_the_exact_command(scratch_repo, fake_az, tools_cli) -> None:
    fake_az.set(fail="ml job create", fail_code="3")
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "train,register", "--execute")
    assert code == 1
    line = [x for x in err.splitlines() if x.startswith("error:")]
    assert line == [
        "error: step train.job-submit failed (exit 3): az ml job create -f jobs/finetune.yml "
        + " ".join(DEV)
        + " --query name -o tsv"
    ]
    assert fake_az.calls()[-1][:3] == ["ml", "job", "create"]  # nothing after the failure
    assert "stand-in failure" in err  # the CLI's own message went through


def test_failed_job_status_stops_before_registration(scratch_repo, fake_az, tools_cli) -> None:
    fake_az.set(job_status="Failed")
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "train,register", "--execute")
    assert code == 1 and "step train.job-status failed (JOB_STATUS is Failed, expected Completed)" in err
    assert not [c for c in fake_az.calls() if c[:3] == ["ml", "model", "create"]]


def test_failed_deployment_prints_get_logs_for_both_containers(scratch_repo, fake_az, tools_cli) -> None:
    fake_az.set(fail="ml online-deployment create")
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "deploy,smoke,teardown", "--execute", "--yes")
    assert code == 1
    base = f"az ml online-deployment get-logs --name blue --endpoint-name {ENDPOINT} {' '.join(DEV)}"
    assert f"hint: {base} --container inference-server --lines 200" in err
    assert f"hint: {base} --container storage-initializer --lines 200" in err
    assert "error: step deploy.deployment-blue failed (exit 1): az ml online-deployment create" in err
    assert [c[:3] for c in fake_az.calls()][-1] == ["ml", "online-deployment", "create"]  # no invoke, no delete


def test_destructive_steps_are_refused_without_yes_before_anything_runs(scratch_repo, fake_az, tools_cli) -> None:
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "all", "--execute")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "error: refusing to run destructive steps without --yes: teardown.endpoint-delete (nothing was run)"
    )
    assert fake_az.calls() == []


def test_dry_run_prints_the_plan_and_runs_nothing(scratch_repo, fake_az, tools_cli) -> None:
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "all")
    assert code == 0 and fake_az.calls() == []
    assert "JOB_NAME=$(az ml job create -f jobs/finetune.yml" in out
    assert "dry run: " in err and "teardown.endpoint-delete will need --yes" in err


def test_register_alone_needs_the_job_name(scratch_repo, fake_az, tools_cli) -> None:
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "register", "--execute")
    assert code == 2 and "need JOB_NAME: pass --job-name NAME" in err and fake_az.calls() == []
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "register", "--execute", "--job-name", "given_job_1")
    assert code == 0, err
    assert fake_az.calls() == [expected_tail("given_job_1")[2]]


def test_empty_capture_stops_with_a_precise_line(scratch_repo, fake_az, tools_cli) -> None:
    fake_az.set(empty="container_registry")
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "bootstrap", "--execute")
    assert code == 1 and "error: step bootstrap.container-registry failed (it printed no ACR_ID)" in err
    assert len(fake_az.calls()) == 3


def test_missing_sample_request_is_named_before_invoking(scratch_repo, fake_az, tools_cli) -> None:
    (scratch_repo / "endpoints" / "sample_score.json").unlink()
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "smoke", "--execute")
    assert code == 2 and fake_az.calls() == []
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
    commands = [line for line in result.stdout.splitlines() if line.startswith(("az ", "  az ")) or "=$(az " in line]
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


def test_job_option_submits_another_rendered_job(scratch_repo, fake_az, tools_cli) -> None:
    ws = load_workspace("dev", scratch_repo, "ACD")
    others = [
        path for path, kind, _ in ws.specs if kind in ("pipelineJob", "commandJob") and path != "jobs/finetune.yml"
    ]
    assert others == ["jobs/finetune-sft.yml"]  # our SFT path's job
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "train", "--execute", "--job", others[0])
    assert code == 0, err
    submits = [c for c in fake_az.calls() if c[:3] == ["ml", "job", "create"]]
    assert submits == [["ml", "job", "create", "-f", others[0], *DEV, "--query", "name", "-o", "tsv"]]
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "train", "--job", "jobs/nope.yml")
    assert code == 2 and "--job jobs/nope.yml: not a rendered job spec of dev" in err
