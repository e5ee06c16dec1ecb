"""The `type: finetuning` path of plan and apply against the semantic stand-in `az`: the plan shows the submission
and the deployment of the model the job registers; apply submits, follows the job to a terminal state, requires
Completed, registers nothing itself (the service registers `outputs.registered_model`) and deploys the version
Azure reports for that output. Azure's state is read back through `az` (show, list, --query -o tsv)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.operate.output import captured, joined, overlong
from tools.operate.stages import build_plan, job_spec, registered_model
from tools.operate.workspace import RenderedSpec, load_workspace

SUB = "00000000-0000-0000-0000-000000000000"
DEV = ["-g", "rg-ultrachat-dev", "-w", "mlw-ultrachat-dev", "--subscription", SUB]
ENDPOINT = "ultrachat-phi4-dev"
MODEL = "phi4-ultrachat"
JOB = "jobs/finetune-serverless.yml"
FAST = ("--layers", "ACD")


def apply(cli, root: Path, *argv: str):
    return cli("apply", "--workspace", "dev", "--root", str(root), *FAST, "--job", JOB, *argv)


def served_model(cloud) -> str:
    traffic = cloud.show("ml", "online-endpoint", "show", "--name", ENDPOINT, *DEV)["traffic"]
    live = [name for name, pct in traffic.items() if int(pct) == 100]
    assert len(live) == 1, traffic
    return cloud.show("ml", "online-deployment", "show", "--name", live[0], "--endpoint-name", ENDPOINT, *DEV)["model"]


def test_plan_shows_the_submission_and_the_deployment_of_its_output(scratch_repo, tools_cli) -> None:
    code, out, err = tools_cli("plan", "--workspace", "dev", "--root", str(scratch_repo), *FAST, "--job", JOB)
    assert code == 0, err
    assert overlong(out) == []
    out = joined(out)
    scope = " ".join(DEV)
    assert f"JOB_NAME=$(az ml job create -f {JOB} {scope} --query name -o tsv)" in out
    assert f'az ml job stream --name "${{JOB_NAME}}" {scope}' in out
    assert f'JOB_STATUS=$(az ml job show --name "${{JOB_NAME}}" {scope} --query status -o tsv)\n' \
           'test "$JOB_STATUS" = Completed' in out  # fmt: skip
    assert "az ml model create" not in out and "# == register ==" not in out  # the service registers the output
    capture = (f'REGISTERED_MODEL_VERSION=$(az ml job show --name "${{JOB_NAME}}" {scope} '
               "--query outputs.registered_model.version -o tsv)")  # fmt: skip
    assert capture in out
    deploy = f'--all-traffic --set "model=azureml:{MODEL}:${{REGISTERED_MODEL_VERSION}}"'
    assert deploy in out and out.index(capture) < out.index(deploy) and out.index("JOB_STATUS=") < out.index(capture)
    assert "az ml model show --name" not in out  # no version to guard: the service registers the next free one


def test_apply_submits_follows_and_deploys_the_registered_output_then_rolls_out_the_next(
    scratch_repo, cloud, tools_cli
) -> None:
    code, out, err = apply(tools_cli, scratch_repo, "--stage", "train,register,deploy,smoke", "--execute")
    assert code == 0, err
    argvs = cloud.argvs()
    assert [a for a in argvs if a[:3] == ["ml", "job", "create"]] == [
        ["ml", "job", "create", "-f", JOB, *DEV, "--query", "name", "-o", "tsv"]
    ]
    assert not [a for a in argvs if a[:3] == ["ml", "model", "create"]]
    # runs_on instance_types: the job uses neither the GPU cluster nor our SFT environment and component
    assert not [a for a in argvs if a[1:3] == ["compute", "create"] or a[1] in ("environment", "component")]
    job = captured(out, "JOB_NAME")
    assert cloud.az("ml", "job", "show", "--name", job, *DEV, "--query", "status", "-o", "tsv").stdout.strip() == (
        "Completed"
    )
    assert cloud.show("ml", "model", "show", "--name", MODEL, "--version", "1", *DEV) is not None
    assert served_model(cloud).endswith(f"/models/{MODEL}/versions/1")

    code, out, err = apply(tools_cli, scratch_repo, "--stage", "train,deploy,smoke", "--execute")  # a second run
    assert code == 0, err
    assert cloud.show("ml", "model", "show", "--name", MODEL, "--version", "2", *DEV) is not None
    assert served_model(cloud).endswith(f"/models/{MODEL}/versions/2")  # the version Azure reported, rolled out
    assert "rolled out green" in out
    rows = cloud.show("ml", "online-deployment", "list", "--endpoint-name", ENDPOINT, *DEV)
    assert [r["name"] for r in rows] == ["green"]


def test_a_failed_or_canceled_finetuning_job_stops_with_one_line_and_its_logs_command(
    scratch_repo, cloud, tools_cli
) -> None:
    for status in ("Failed", "Canceled"):
        cloud.forget_calls()
        cloud.job_outcomes(status)
        code, out, err = apply(tools_cli, scratch_repo, "--stage", "train,deploy", "--execute")
        assert code == 1
        job = captured(out, "JOB_NAME")
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert errors == [f"error: step train.job-status failed (job {job} ended {status}; JOB_STATUS is {status}, "
                          "expected Completed): nothing after it ran"]  # fmt: skip
        assert f"hint: az ml job download --name {job} --all --download-path job-logs/{job} {' '.join(DEV)}" in err
        assert not [a for a in cloud.argvs() if a[:2] in (["ml", "online-endpoint"], ["ml", "online-deployment"])]
    assert cloud.show("ml", "model", "show", "--name", MODEL, "--version", "1", *DEV) is None


def test_deploy_without_train_reads_the_version_from_the_named_job(scratch_repo, cloud, tools_cli) -> None:
    assert apply(tools_cli, scratch_repo, "--stage", "train", "--execute")[0] == 0
    job = cloud.az("ml", "job", "show", "--name", "job_0001", *DEV, "--query", "name", "-o", "tsv").stdout.strip()
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "deploy", "--execute")
    assert code == 2 and "need JOB_NAME: pass --job-name NAME" in err
    code, _, err = apply(tools_cli, scratch_repo, "--stage", "deploy", "--execute", "--job-name", job)
    assert code == 0, err
    assert served_model(cloud).endswith(f"/models/{MODEL}/versions/1")


def test_a_version_set_in_the_spec_is_guarded_and_deployed_as_it_is(scratch_repo) -> None:
    ws = load_workspace("dev", scratch_repo, "ACD")
    spec = job_spec(ws, JOB)
    outputs = {"registered_model": {**spec.data["outputs"]["registered_model"], "version": "3"}}
    pinned = RenderedSpec(spec.path, spec.kind, {**spec.data, "outputs": outputs})
    ws = dataclasses.replace(ws, specs=tuple(pinned if s.path == JOB else s for s in ws.specs))
    assert registered_model(ws, pinned) == (MODEL, "3")
    steps = build_plan(ws, ["train", "register", "deploy"], JOB)
    names = [s.name for s in steps]
    assert "train.model-version-free" in names and "deploy.registered-model-version" not in names
    guard = steps[names.index("train.model-version-free")]
    assert guard.show[:8] == ("az", "ml", "model", "show", "--name", MODEL, "--version", "3")
    deployment = next(s for s in steps if s.action == "rollout")
    assert deployment.sets == (f"model=azureml:{MODEL}:3",) and deployment.argv[-2:] == (
        "--set", f"model=azureml:{MODEL}:3")  # fmt: skip
    assert not [s for s in steps if s.stage == "register"]
