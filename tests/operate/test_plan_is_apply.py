"""The printed plan and `apply --execute` send the same commands: one scenario (a new endpoint takes its first
deployment, then a new model version rolls out blue/green beside it, its online check on) run both ways against two
fresh stand-ins, the plan as the bash script it is, apply in process. Both build their argv from
``tools.operate.commands`` (and ``tools.operate.online``, whose check asks `az` for the endpoint's credentials and
scores both deployments on the stand-in's loopback scoring server); this test holds that the plan a reviewer reads
is what apply does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.operate.cloud import Cloud
from tools.core.repo import REPO_ROOT
from tools.operate.promote import set_values_key
from tools.render.engine import render

FAST = ("--layers", "ACD")
SUB = "00000000-0000-0000-0000-000000000000"
DEV = ["-g", "rg-ultrachat-dev", "-w", "mlw-ultrachat-dev", "--subscription", SUB]
READS = ("show", "list", "list-usage")


def seed_model(cloud: Cloud, root: Path, version: str) -> None:
    cloud.az("ml", "model", "create", "-f", str(root / "models" / "finetuned-model.yml"), "--version", version,
             "--path", f"azureml://jobs/run_{version}/outputs/trained_model", *DEV)  # fmt: skip


def next_version(root: Path, version: int) -> None:
    """The dev values register (and so deploy) ``version``; the committed render follows."""
    values = root / "workspaces" / "dev.yaml"
    values.write_text(set_values_key(values.read_text(), ("registered_model", "version"), version))
    render("dev", root).write()


def changes(cloud: Cloud) -> list[list[str]]:
    """What changed Azure or scored a request, in order: reads left out, and `online-endpoint update -f` of an
    existing endpoint (the plan updates it unconditionally; apply only when it differs, and here it does not)."""
    out = []
    for argv in cloud.argvs():
        if argv[0] != "ml" or argv[2] in READS or argv[1:4] == ["online-endpoint", "update", "-f"] and out:
            continue
        out.append(argv)
    return out


def check_on(root: Path) -> None:
    values = root / "workspaces" / "dev.yaml"
    values.write_text(values.read_text() + "\nrollout:\n  online_check:\n    enabled: true\n    rows: 3\n")


def test_the_printed_plan_runs_the_commands_apply_runs(tmp_path, make_repo, cloud, tools_cli) -> None:
    by_apply, by_plan = make_repo(tmp_path / "apply"), make_repo(tmp_path / "plan")
    check_on(by_apply)
    check_on(by_plan)
    shell = Cloud(tmp_path / "cloud-plan")
    scoring = shell.serve_scoring()
    # the plan's `python -m tools` is this interpreter, with this checkout's tools (the scratch copy has none)
    path = os.pathsep.join((str(Path(sys.executable).parent), shell.env()["PATH"]))
    env = {**os.environ, **shell.env(), "PATH": path, "PYTHONPATH": str(REPO_ROOT)}
    try:
        run_both(tools_cli, cloud, by_apply, by_plan, shell, env)
    finally:
        scoring.stop()
    done = changes(cloud)
    assert done == changes(shell)
    creates = [a for a in done if a[1:3] == ["online-deployment", "create"]]
    assert [a[a.index("--name") + 1] for a in creates] == ["blue", "green"]  # the scenario did roll out
    assert [a[1:3] for a in done].count(["online-endpoint", "invoke"]) == 9  # direct, 3 x (new, live), 2 smoke
    assert done[-2][1:3] == ["online-deployment", "delete"]
    checked = [a for a in done if a[1:3] == ["online-endpoint", "get-credentials"]]
    assert len(checked) == 1 and done.index(checked[0]) < next(i for i, a in enumerate(done) if "--traffic" in a[3:])
    for root in (by_apply, by_plan):  # both scored green against blue on the first 3 gate rows, and passed
        report = json.loads((root / ".runs" / "online-check" / "ultrachat-phi4-dev" / "report.json").read_text())
        assert report["verdict"] == "pass" and report["gate"]["rows"] == 3


def run_both(tools_cli, cloud: Cloud, by_apply: Path, by_plan: Path, shell: Cloud, env: dict) -> None:  # noqa: ANN001
    stages = ("--workspace", "dev", *FAST, "--stage", "deploy,smoke")
    for version in (1, 2):
        if version > 1:
            next_version(by_apply, version)
            next_version(by_plan, version)
        seed_model(cloud, by_apply, str(version))
        seed_model(shell, by_plan, str(version))
        code, _, err = tools_cli("apply", "--root", str(by_apply), *stages, "--execute")
        assert code == 0, err
        code, plan, err = tools_cli("plan", "--root", str(by_plan), *stages)
        assert code == 0, err
        ran = subprocess.run(["bash", "-s"], input=plan, cwd=by_plan, env=env, capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr
