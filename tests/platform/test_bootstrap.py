"""`apply --stage bootstrap` against the semantic stand-in `az` (tests/operate/standin_az, ground.py): from nothing
it creates the registry, the workspaces, the identity and every role; run again it changes nothing; a planted change
updates only what changed; a change Azure refuses stops before any call that changes anything. Every command the plan
prints exists in the CLI with those flags (the argument tables named in CLI_FLAGS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.operate.cloud import SUB, Cloud
from tools.operate.bootstrap import ROLES

FAST = ("--layers", "ACD")
WRITES = ("create", "update", "provision-network")
# Every flag of every command bootstrap prints, as the CLI's argument tables declare them (`--subscription`, `-o`
# and `--query` are global). Sources: azure-cli-extensions src/machinelearningservices/azext_mlv2/manual/_params/
# _workspace_params.py, _registry_params.py, _common_params.py; azure-cli src/azure-cli/azure/cli/command_modules/
# role/_params.py ('role assignment'), identity/_params.py, resource/_params.py ('group').
CLI_FLAGS = {
    ("ml", "workspace", "show"): {"--name", "--resource-group"},
    ("ml", "workspace", "create"): {"--file", "--name", "--resource-group", "--location", "--no-wait"},
    ("ml", "workspace", "update"): {"--file", "--name", "--resource-group", "--no-wait"},
    ("ml", "workspace", "provision-network"): {"--name", "--resource-group", "--include-spark", "--no-wait"},
    ("ml", "registry", "show"): {"--name", "--resource-group"},
    ("ml", "registry", "create"): {"--file", "--name", "--resource-group", "--no-wait"},
    ("ml", "registry", "update"): {"--file", "--name", "--resource-group", "--no-wait"},
    ("group", "show"): {"--name"},
    ("group", "create"): {"--name", "--location"},
    ("identity", "show"): {"--name", "--resource-group"},
    ("identity", "create"): {"--name", "--resource-group", "--location"},
    ("role", "assignment", "list"): {"--assignee", "--role", "--scope"},
    ("role", "assignment", "create"): {"--assignee-object-id", "--assignee-principal-type", "--role", "--scope"},
}
GLOBAL = {"--subscription", "--query", "-o", "--output"}


def apply(cli, root: Path, workspace: str, *argv: str):
    return cli("apply", "--workspace", workspace, "--root", str(root), *FAST, "--stage", "bootstrap", *argv)


def writes(cloud: Cloud) -> list[list[str]]:
    return [a for a in cloud.argvs() if any(w in a[:4] for w in WRITES)]


def bootstrap_all(cli, repo: Path) -> None:
    for workspace in ("dev", "prod"):
        code, out, err = apply(cli, repo, workspace, "--execute")
        assert code == 0, out + err


def test_from_nothing_creates_registry_workspaces_identity_and_roles(scratch_repo, cloud, tools_cli) -> None:
    bootstrap_all(tools_cli, scratch_repo)
    registry = cloud.show("ml", "registry", "show", "--name", "contoso-ml-registry", "-g", "rg-ultrachat-registry")
    assert registry and registry["location"] == "eastus2"
    for name, rg, mode in (("mlw-ultrachat-dev", "rg-ultrachat-dev", "allow_internet_outbound"),
                           ("mlw-ultrachat-prod", "rg-ultrachat-prod", "allow_only_approved_outbound")):  # fmt: skip
        ws = cloud.show("ml", "workspace", "show", "--name", name, "-g", rg)
        assert ws and ws["managed_network"]["isolation_mode"] == mode
        assert ws["managed_network"]["status"]["status"] == "Active"  # provisioned for the online deployment
        identity = cloud.show("identity", "show", "--name", "uami-ultrachat", "-g", rg)
        assert identity and identity["principalId"]
        roles = json.loads(cloud.az("role", "assignment", "list", "--assignee", identity["principalId"]).stdout)
        assert sorted(r["roleDefinitionName"] for r in roles) == sorted(r.role for r in ROLES if r.principal ==
                                                                        "endpoint")  # fmt: skip
    ci = json.loads(cloud.az("role", "assignment", "list", "--assignee", SUB).stdout)  # the placeholder CI principal
    assert len(ci) == 2 * sum(r.principal == "ci" for r in ROLES) - 1  # the registry role is one assignment
    creates = [" ".join(a[:3]) for a in writes(cloud)]
    assert creates.count("ml registry create") == 1 and creates.count("ml workspace create") == 2
    assert "ml registry update" not in creates  # prod's bootstrap found the registry as dev left it


def test_run_again_changes_nothing(scratch_repo, cloud, tools_cli) -> None:
    bootstrap_all(tools_cli, scratch_repo)
    cloud.forget_calls()
    bootstrap_all(tools_cli, scratch_repo)
    assert writes(cloud) == []
    assert cloud.argvs() and all(a[:2] != ["role", "assignment"] or a[2] == "list" for a in cloud.argvs())


def test_a_planted_change_updates_only_what_changed(scratch_repo, cloud, tools_cli) -> None:
    from tools.render.engine import render

    bootstrap_all(tools_cli, scratch_repo)
    cloud.forget_calls()
    values = scratch_repo / "workspaces" / "dev.yaml"
    data = values.read_text().replace("  name: mlw-ultrachat-dev\n",
                                      "  name: mlw-ultrachat-dev\n  description: Dev, now described.\n")  # fmt: skip
    values.write_text(data)
    render("dev", scratch_repo).write()
    code, out, err = apply(tools_cli, scratch_repo, "dev", "--execute")
    assert code == 0, out + err
    assert [a[:3] for a in writes(cloud)] == [["ml", "workspace", "update"]]
    ws = cloud.show("ml", "workspace", "show", "--name", "mlw-ultrachat-dev", "-g", "rg-ultrachat-dev")
    assert ws["description"] == "Dev, now described."
    assert "updated (description)" in out


def planted_live_workspace(cloud: Cloud, tmp_path: Path, **changes: object) -> None:
    """A workspace that already exists in Azure as the spec says, except ``changes`` (made through az itself)."""
    from tools.core.repo import REPO_ROOT

    spec = yaml.safe_load((REPO_ROOT / "workspace" / "workspace.yml").read_text())
    spec.update(changes)
    path = tmp_path / "live-workspace.yml"
    path.write_text(yaml.safe_dump(spec))
    cloud.az("group", "create", "--name", "rg-ultrachat-dev", "--location", "eastus2", "--subscription", SUB)
    cloud.az("ml", "workspace", "create", "--file", str(path), "--resource-group", "rg-ultrachat-dev",
             "--subscription", SUB)  # fmt: skip


@pytest.mark.parametrize("changes", [
    {"location": "westus3"},
    {"managed_network": {"isolation_mode": "allow_only_approved_outbound"}},
], ids=["region", "looser-network"])  # fmt: skip
def test_a_refused_change_stops_before_any_call(scratch_repo, cloud, tools_cli, tmp_path, changes) -> None:
    planted_live_workspace(cloud, tmp_path, **changes)
    cloud.forget_calls()
    code, out, err = apply(tools_cli, scratch_repo, "dev", "--execute")
    assert code == 1
    assert writes(cloud) == []
    assert all(a[2:3] == ["show"] for a in cloud.argvs()), cloud.argvs()
    assert "(nothing was created or updated)" in err
    key = "region cannot change" if "location" in changes else "isolation cannot loosen"
    assert key in err and err.count("\n") <= 3, err


def test_every_printed_command_exists_with_those_flags(scratch_repo) -> None:
    """The argv of every bootstrap step, its `show` and its `update` (what the plan prints and apply runs)."""
    from tools.operate.stages import build_plan
    from tools.operate.workspace import load_workspace

    for workspace in ("dev", "prod"):
        steps = build_plan(load_workspace(workspace, scratch_repo, "ACD"), ["bootstrap"])
        commands = [argv for step in steps for argv in (step.argv, step.show, step.update) if argv]
        assert len(commands) > 20
        for argv in commands:
            assert argv[0] == "az"
            key = next((k for k in CLI_FLAGS if tuple(argv[1 : 1 + len(k)]) == k), None)
            assert key is not None, argv
            flags = {w for w in argv if w.startswith("-")}
            assert flags <= CLI_FLAGS[key] | GLOBAL, (argv, flags - CLI_FLAGS[key] - GLOBAL)
