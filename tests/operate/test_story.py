"""The operate story against the semantic stand-in `az` (tests/operate/cloud.py): idempotent apply, promoting v1
then v2 to prod with a blue/green rollout, GitOps rollback by reverting the promotion commit, the emergency
rollback command, a failing smoke test, drift, and the quota preflight. Azure's state is read back through `az`
(show/list), the order of what the tools did from the recorder's log: nothing here reads the stand-in's files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.operate.output import outcomes
from tools.operate.promote import set_values_key
from tools.render.engine import render

FAST = ("--layers", "ACD")
SUB = "00000000-0000-0000-0000-000000000000"
DEV = ["-g", "rg-ultrachat-dev", "-w", "mlw-ultrachat-dev", "--subscription", SUB]
PROD = ["-g", "rg-ultrachat-prod", "-w", "mlw-ultrachat-prod", "--subscription", SUB]
PROD_ENDPOINT = "ultrachat-phi4-prod"
MODEL = "phi4-ultrachat"
REGISTRY = "contoso-ml-registry"
GIT = ("-c", "user.name=t", "-c", "user.email=t@example.invalid")


def git(root: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(root), *GIT, *argv], check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def repo(scratch_repo: Path, repo_root: Path) -> Path:
    shutil.copy(repo_root / ".gitignore", scratch_repo / ".gitignore")
    git(scratch_repo, "init", "-q", "-b", "main")
    git(scratch_repo, "add", ".")
    git(scratch_repo, "commit", "-qm", "base")
    return scratch_repo


def seed_dev_model(cloud, root: Path, version: str) -> None:
    """A registered dev model version, as a finished training run leaves it."""
    cloud.az("ml", "model", "create", "--name", MODEL, "--version", version, "--type", "mlflow_model",
             "--path", f"azureml://jobs/run_{version}/outputs/trained_model",
             "-f", str(root / "models" / "finetuned-model.yml"), *DEV)  # fmt: skip


def evaluate_dev(cli, root: Path, version: str) -> None:
    """The evaluate stage in dev for ``version`` (the values register it), so it carries eval_verdict=pass."""
    values = root / "workspaces" / "dev.yaml"
    values.write_text(set_values_key(values.read_text(), ("registered_model", "version"), int(version)))
    render("dev", root).write()
    code, _, err = cli("apply", "--workspace", "dev", "--root", str(root), *FAST, "--stage", "evaluate", "--execute")
    assert code == 0, err


def prod_state(cloud) -> tuple[dict[str, int], dict[str, str]]:
    """(traffic, {deployment: model}) of the prod endpoint, read through az."""
    endpoint = cloud.show("ml", "online-endpoint", "show", "--name", PROD_ENDPOINT, *PROD)
    rows = cloud.show("ml", "online-deployment", "list", "--endpoint-name", PROD_ENDPOINT, *PROD)
    return {k: int(v) for k, v in endpoint["traffic"].items()}, {r["name"]: str(r["model"]) for r in rows}


def serving(cloud) -> str:
    traffic, models = prod_state(cloud)
    live = [name for name, pct in traffic.items() if pct == 100]
    assert len(live) == 1, traffic
    return models[live[0]]


def promote_and_apply(cli, cloud, root: Path, version: str) -> tuple[int, str, str]:
    seed_dev_model(cloud, root, version)
    evaluate_dev(cli, root, version)
    code, out, err = cli("promote", "--model", f"{MODEL}:{version}", "--root", str(root), *FAST, "--execute")
    assert code == 0, err
    git(root, "commit", "-q", "--allow-empty", "-am", f"Promote {MODEL}:{version} to prod")
    return cli("apply", "--workspace", "prod", "--root", str(root), *FAST, "--stage", "deploy,smoke", "--execute")


def traffic_named_only_existing_deployments(calls: list[dict], before: set[str]) -> bool:
    """Replay the log: every traffic update succeeded and named deployments that existed at that moment."""
    existing = set(before)
    for call in calls:
        argv, ok = call["argv"], call["rc"] == 0
        if argv[:3] == ["ml", "online-deployment", "create"] and ok:
            existing.add(argv[argv.index("--name") + 1])
        if argv[:3] == ["ml", "online-deployment", "delete"] and ok:
            existing.discard(argv[argv.index("--name") + 1])
        if argv[:3] == ["ml", "online-endpoint", "update"] and "--traffic" in argv:
            names = {pair.split("=")[0] for pair in argv[argv.index("--traffic") + 1].split()}
            if not ok or not names <= existing:
                return False
    return True


def test_apply_deploy_smoke_twice_leaves_the_same_state(scratch_repo, cloud, tools_cli) -> None:
    seed_dev_model(cloud, scratch_repo, "1")
    argv = ("apply", "--workspace", "dev", "--root", str(scratch_repo), *FAST, "--stage", "deploy,smoke", "--execute")
    code, out, err = tools_cli(*argv)
    assert code == 0, err
    assert "created blue with all traffic (first deployment of ultrachat-phi4-dev)" in out
    first = [cloud.show("ml", "online-endpoint", "show", "--name", "ultrachat-phi4-dev", *DEV),
             cloud.show("ml", "online-deployment", "list", "--endpoint-name", "ultrachat-phi4-dev", *DEV)]
    code, out, err = tools_cli(*argv)
    assert code == 0, err
    said = outcomes(out)
    assert [step for step, o in said.items() if o.startswith("unchanged")] == [
        "deploy.endpoint-ultrachat-phi4-dev", "deploy.deployment-blue"]  # fmt: skip
    assert said["smoke.invoke"] == "done" and len(said) == 3
    again = [cloud.show("ml", "online-endpoint", "show", "--name", "ultrachat-phi4-dev", *DEV),
             cloud.show("ml", "online-deployment", "list", "--endpoint-name", "ultrachat-phi4-dev", *DEV)]
    assert again == first and first[0]["traffic"] == {"blue": 100}


def test_promote_v1_then_v2_rolls_out_blue_green_and_revert_serves_v1(repo, cloud, tools_cli) -> None:
    code, out, err = promote_and_apply(tools_cli, cloud, repo, "1")
    assert code == 0, err
    assert serving(cloud).endswith(f"models/{MODEL}/versions/1")
    cloud.forget_calls()

    code, out, err = promote_and_apply(tools_cli, cloud, repo, "2")
    assert code == 0, err
    traffic, models = prod_state(cloud)
    assert serving(cloud).endswith(f"models/{MODEL}/versions/2") and len(models) <= 2
    new = next(name for name, pct in traffic.items() if pct == 100)
    calls = cloud.calls()
    argvs = [c["argv"] for c in calls]
    created = next(i for i, a in enumerate(argvs) if a[:3] == ["ml", "online-deployment", "create"])
    assert "--all-traffic" not in argvs[created] and argvs[created][argvs[created].index("--name") + 1] == new
    direct = next(i for i, a in enumerate(argvs) if a[:3] == ["ml", "online-endpoint", "invoke"]
                  and "--deployment-name" in a and a[a.index("--deployment-name") + 1] == new)  # fmt: skip
    first_live = next(i for i, a in enumerate(argvs)
                      if "--traffic" in a and f"{new}=0" not in a[a.index("--traffic") + 1])  # fmt: skip
    assert created < direct < first_live and calls[direct]["rc"] == 0
    assert traffic_named_only_existing_deployments(calls, {"blue"})

    git(repo, "revert", "--no-edit", "HEAD")  # GitOps rollback: revert the promotion, apply
    code, out, err = tools_cli("apply", "--workspace", "prod", "--root", str(repo), *FAST, "--stage", "deploy,smoke",
                               "--execute")  # fmt: skip
    assert code == 0, err
    assert serving(cloud).endswith(f"models/{MODEL}/versions/1") and len(prod_state(cloud)[1]) <= 2
    assert traffic_named_only_existing_deployments(cloud.calls(), {"blue"})


def test_failing_smoke_test_leaves_all_traffic_on_the_old_deployment(repo, cloud, tools_cli) -> None:
    assert promote_and_apply(tools_cli, cloud, repo, "1")[0] == 0
    old_traffic, _ = prod_state(cloud)
    cloud.fail_invokes("green")
    code, out, err = promote_and_apply(tools_cli, cloud, repo, "2")
    assert code == 1
    assert "rollout of green on ultrachat-phi4-prod failed" in err and "all traffic is on blue" in err
    assert "get-logs --name green --endpoint-name ultrachat-phi4-prod" in err and "storage-initializer" in err
    traffic, _ = prod_state(cloud)
    assert {k: v for k, v in traffic.items() if v} == {k: v for k, v in old_traffic.items() if v} == {"blue": 100}
    assert serving(cloud).endswith("versions/1")


def test_failure_after_a_traffic_shift_moves_traffic_back(repo, cloud, tools_cli) -> None:
    assert promote_and_apply(tools_cli, cloud, repo, "1")[0] == 0
    cloud.forget_calls()
    cloud.fail_live_invokes("green")  # green answers directly, then fails once live traffic reaches it
    code, _, err = promote_and_apply(tools_cli, cloud, repo, "2")
    assert code == 1 and "rollout of green on ultrachat-phi4-prod failed" in err and "all traffic is on blue" in err
    shifts = [a[a.index("--traffic") + 1] for a in cloud.argvs() if "--traffic" in a]
    assert any(s.startswith("blue=") and not s.endswith("green=0") for s in shifts)  # traffic had moved
    assert shifts[-1] == "blue=100 green=0"
    assert {k: v for k, v in prod_state(cloud)[0].items() if v} == {"blue": 100}
    assert serving(cloud).endswith("versions/1")


def test_a_deployment_that_fails_to_provision_never_takes_traffic(repo, cloud, tools_cli) -> None:
    assert promote_and_apply(tools_cli, cloud, repo, "1")[0] == 0
    cloud.forget_calls()
    cloud.fail_deployments("green")
    code, _, err = promote_and_apply(tools_cli, cloud, repo, "2")
    assert code == 1 and "all traffic is on blue" in err
    assert not [a for a in cloud.argvs() if "--traffic" in a]
    assert prod_state(cloud)[0].get("blue") == 100


def test_emergency_rollback_moves_traffic_to_the_kept_deployment(repo, cloud, tools_cli) -> None:
    defaults = repo / "workspaces" / "defaults.yaml"
    defaults.write_text(defaults.read_text().replace("  keep_old: false", "  keep_old: true"))
    git(repo, "commit", "-qam", "keep the old deployment")
    assert promote_and_apply(tools_cli, cloud, repo, "1")[0] == 0
    code, out, err = promote_and_apply(tools_cli, cloud, repo, "2")
    assert code == 0, err
    assert "blue kept at 0 %" in out and serving(cloud).endswith("versions/2")
    code, out, err = tools_cli("rollback", "--workspace", "prod", "--root", str(repo), *FAST)
    assert code == 0 and "--traffic 'blue=100 green=0'" in out and serving(cloud).endswith("versions/2")  # dry run
    code, out, err = tools_cli("rollback", "--workspace", "prod", "--root", str(repo), *FAST, "--execute")
    assert code == 0, err
    assert serving(cloud).endswith("versions/1") and "all traffic on blue" in out


def test_rollback_without_a_previous_deployment_says_to_revert(repo, cloud, tools_cli) -> None:
    assert promote_and_apply(tools_cli, cloud, repo, "1")[0] == 0
    code, _, err = tools_cli("rollback", "--workspace", "prod", "--root", str(repo), *FAST, "--execute")
    assert code == 1 and "revert the promotion commit" in err


def test_drift_is_silent_on_an_unchanged_state_and_reports_a_planted_change(repo, cloud, tools_cli) -> None:
    assert promote_and_apply(tools_cli, cloud, repo, "1")[0] == 0
    code, out, err = tools_cli("drift", "--workspace", "prod", "--root", str(repo), *FAST)
    assert "managedOnlineDeployment" not in out and "managedOnlineEndpoint" not in out, out
    # the compute cluster and the data assets were never created in prod: drift names them missing, nothing else
    drifted = [line for line in out.splitlines() if line.startswith("drift:")]
    assert code == 1 and drifted and all("missing in Azure" in line for line in drifted), out
    # plant a change: someone scaled the deployment by hand
    spec = (repo / "build/prod/endpoints/deployment.yml").read_text()
    hand = repo / "hand.yml"
    hand.write_text(spec.replace("instance_count: 2", "instance_count: 5"))
    cloud.az("ml", "online-deployment", "update", "-f", str(hand), *PROD)
    code, out, _ = tools_cli("drift", "--workspace", "prod", "--root", str(repo), *FAST)
    assert code == 1
    assert "drift: managedOnlineDeployment blue on ultrachat-phi4-prod" in out
    assert "-instance_count: 2\n+instance_count: 5" in out


def test_drift_on_a_fully_applied_workspace_exits_zero(scratch_repo, cloud, tools_cli) -> None:
    stages = "train,register,evaluate,deploy"
    code, _, err = tools_cli("apply", "--workspace", "dev", "--root", str(scratch_repo), *FAST, "--stage", stages,
                             "--execute", "--job", "jobs/finetune-sft.yml")  # fmt: skip
    assert code == 0, err  # the SFT job and the evaluation use every rendered resource
    code, out, err = tools_cli("drift", "--workspace", "dev", "--root", str(scratch_repo), *FAST)
    assert code == 0, out + err
    assert "Azure matches the rendered specs" in out


def test_quota_preflight_stops_before_the_deployment_is_created(repo, cloud, tools_cli) -> None:
    cloud.usage("standardNCADSA100v4Family", current=100, limit=120)  # 20 free; prod needs 24 x 2 x 1.2 = 58
    seed_dev_model(cloud, repo, "1")
    evaluate_dev(tools_cli, repo, "1")
    assert tools_cli("promote", "--model", f"{MODEL}:1", "--root", str(repo), *FAST, "--execute")[0] == 0
    code, _, err = tools_cli("apply", "--workspace", "prod", "--root", str(repo), *FAST, "--stage", "deploy",
                             "--execute")  # fmt: skip
    assert code == 1
    assert ("quota: deployment blue needs 58 standardNCADSA100v4Family vCPUs (24 x 2 instances x 1.2), 20 free "
            "(limit 120, in use 100): 38 short") in err  # fmt: skip
    assert not [a for a in cloud.argvs() if a[:3] == ["ml", "online-deployment", "create"]]


def test_mirror_goes_to_the_idle_deployment_only_and_is_cleared_before_the_shift(repo, cloud, tools_cli) -> None:
    defaults = repo / "workspaces" / "defaults.yaml"
    assert "  mirror: 0\n" in defaults.read_text()
    defaults.write_text(defaults.read_text().replace("  mirror: 0\n", "  mirror: 20\n"))
    git(repo, "commit", "-qam", "mirror 20 % of live traffic during a rollout")
    assert promote_and_apply(tools_cli, cloud, repo, "1")[0] == 0
    cloud.forget_calls()
    code, out, err = promote_and_apply(tools_cli, cloud, repo, "2")
    assert code == 0, err
    calls = [c for c in cloud.calls() if c["rc"] == 0]
    argvs = [c["argv"] for c in calls]
    live = {"blue": 100}
    mirrors: list[tuple[int, str, int, int]] = []  # (index, deployment, mirrored %, its live % at that moment)
    for i, argv in enumerate(argvs):
        if "--traffic" in argv:
            live = {p.split("=")[0]: int(p.split("=")[1]) for p in argv[argv.index("--traffic") + 1].split()}
        if "--mirror-traffic" in argv:
            name, pct = argv[argv.index("--mirror-traffic") + 1].split("=")
            mirrors.append((i, name, int(pct), live.get(name, 0)))
    assert [(m[1], m[2]) for m in mirrors] == [("green", 20), ("green", 0)]
    assert all(m[2] <= 50 and m[3] == 0 for m in mirrors)  # at most half, never on a deployment with live traffic
    direct = next(i for i, a in enumerate(argvs) if a[:3] == ["ml", "online-endpoint", "invoke"]
                  and "--deployment-name" in a)  # fmt: skip
    first_shift = next(i for i, a in enumerate(argvs)
                       if "--traffic" in a and "green=0" not in a[a.index("--traffic") + 1])  # fmt: skip
    assert direct < mirrors[0][0] < mirrors[1][0] < first_shift  # cleared before green takes live traffic
    endpoint = cloud.show("ml", "online-endpoint", "show", "--name", PROD_ENDPOINT, *PROD)
    assert not any(int(v) for v in (endpoint.get("mirror_traffic") or {}).values())
    assert serving(cloud).endswith("versions/2")


def test_mirror_over_half_of_live_traffic_is_refused_before_anything_runs(repo, cloud, tools_cli) -> None:
    defaults = repo / "workspaces" / "defaults.yaml"
    defaults.write_text(defaults.read_text().replace("  mirror: 0\n", "  mirror: 60\n"))
    code, _, err = tools_cli("apply", "--workspace", "prod", "--root", str(repo), *FAST, "--stage", "deploy",
                             "--execute")  # fmt: skip
    assert code == 2 and "rollout.mirror" in err and "50" in err
    assert cloud.calls() == []


def test_quota_preflight_falls_back_to_az_vm_list_usage(repo, cloud, tools_cli) -> None:
    cloud.ml_usage_missing()  # an `ml` extension without `compute list-usage`
    cloud.usage("standardNCADSA100v4Family", current=100, limit=120)
    seed_dev_model(cloud, repo, "1")
    evaluate_dev(tools_cli, repo, "1")
    assert tools_cli("promote", "--model", f"{MODEL}:1", "--root", str(repo), *FAST, "--execute")[0] == 0
    argv = ("apply", "--workspace", "prod", "--root", str(repo), *FAST, "--stage", "deploy", "--execute")
    code, _, err = tools_cli(*argv)
    assert code == 1
    assert "quota: deployment blue needs 58 standardNCADSA100v4Family vCPUs (24 x 2 instances x 1.2), 20 free" in err
    usage_calls = [a for a in cloud.argvs() if "list-usage" in a]
    assert usage_calls[0][:3] == ["ml", "compute", "list-usage"]
    assert usage_calls[1][:4] == ["vm", "list-usage", "--location", "eastus2"]
    assert not [a for a in cloud.argvs() if a[:3] == ["ml", "online-deployment", "create"]]
    cloud.usage("standardNCADSA100v4Family", current=0, limit=120)
    code, out, err = tools_cli(*argv)
    assert code == 0, err
    assert "quota: deployment blue needs 58 standardNCADSA100v4Family vCPUs (24 x 2 instances x 1.2): fits" in out
