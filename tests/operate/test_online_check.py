"""The online check of a blue/green rollout (``rollout.online_check``, tools/operate/online.py) against the stand-in
`az` and its loopback scoring server: the first K gate rows go to the new and the live deployment through the
scoring URI (azureml-model-deployment header, the endpoint's credentials from `az`); a healthy new deployment passes
and takes the traffic, a slow or erroring one stops the rollout before any traffic moves, with one line naming the
metric, both values and the margin, and the traffic read back through `az ml online-endpoint show` is unchanged.
The printed plan runs the same check (tests/operate/test_plan_is_apply.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.operate.cloud import Cloud
from tests.operate.test_plan_is_apply import DEV, FAST, next_version, seed_model
from tools.core.errors import UserError
from tools.operate import bluegreen
from tools.operate.workspace import load_workspace

ENDPOINT = "ultrachat-phi4-dev"
ROWS = 4


def enable_check(root: Path, latency_margin_ms: int = 500, error_rate_margin: float = 0.05) -> None:
    """Dev's values turn the check on (the defaults leave it off in dev), on the sample gate set."""
    values = root / "workspaces" / "dev.yaml"
    values.write_text(values.read_text() + (
        "\nrollout:\n  online_check:\n    enabled: true\n"
        f"    rows: {ROWS}\n    latency_margin_ms: {latency_margin_ms}\n    error_rate_margin: {error_rate_margin}\n"
    ))  # fmt: skip


def live_then_next(cloud: Cloud, root: Path, tools_cli) -> None:  # noqa: ANN001
    """Version 1 serves on blue (a first deployment: no check), then the values deploy version 2."""
    seed_model(cloud, root, "1")
    code, _, err = tools_cli("apply", "--root", str(root), "--workspace", "dev", *FAST, "--stage", "deploy",
                             "--execute")  # fmt: skip
    assert code == 0, err
    next_version(root, 2)
    seed_model(cloud, root, "2")
    cloud.forget_calls()


def traffic(cloud: Cloud) -> dict[str, int]:
    endpoint = cloud.show("ml", "online-endpoint", "show", "--name", ENDPOINT, *DEV)
    assert endpoint is not None
    return {name: int(pct) for name, pct in endpoint["traffic"].items() if int(pct)}


def report(root: Path) -> dict:
    return json.loads((root / ".runs" / "online-check" / ENDPOINT / "report.json").read_text())


def test_a_healthy_green_passes_the_check_and_takes_the_traffic(scratch_repo, cloud, tools_cli) -> None:
    enable_check(scratch_repo)
    live_then_next(cloud, scratch_repo, tools_cli)
    code, out, err = tools_cli("apply", "--root", str(scratch_repo), "--workspace", "dev", *FAST, "--stage", "deploy",
                               "--execute")  # fmt: skip
    assert code == 0, err
    assert traffic(cloud) == {"green": 100}
    checked = report(scratch_repo)
    assert checked["verdict"] == "pass" and checked["gate"]["rows"] == ROWS
    assert checked["candidate"]["id"].endswith("#green") and checked["champion"]["id"].endswith("#blue")
    assert checked["metrics"]["error_rate"]["candidate"] == 0 and checked["metrics"]["latency_s"]["margin"] == 0.5
    argvs = [" ".join(argv) for argv in cloud.argvs()]
    credentials = [i for i, a in enumerate(argvs) if a.startswith("ml online-endpoint get-credentials")]
    shifts = [i for i, a in enumerate(argvs) if "--traffic" in a]
    assert credentials and shifts and credentials[-1] < shifts[0]  # the check came before any traffic moved


@pytest.mark.parametrize(("fault", "metric"), [({"delay_s": 0.5}, "latency_s"), ({"fail_every": 2}, "error_rate")])
def test_a_worse_green_stops_the_rollout_before_any_traffic_moves(scratch_repo, cloud, tools_cli, fault: dict,
                                                                  metric: str) -> None:  # fmt: skip
    enable_check(scratch_repo, latency_margin_ms=100)
    live_then_next(cloud, scratch_repo, tools_cli)
    cloud.scoring_faults("green", **fault)  # the direct smoke invoke (az) still answers
    code, out, err = tools_cli("apply", "--root", str(scratch_repo), "--workspace", "dev", *FAST, "--stage", "deploy",
                               "--execute")  # fmt: skip
    assert code == 1, out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    margin = "+0.1 " if metric == "latency_s" else "+0.05 "
    assert f"online check refused green against blue ({metric}: candidate " in errors[0]
    assert " vs champion " in errors[0] and f"margin {margin}" in errors[0] and "traffic untouched" in errors[0]
    assert "az ml online-deployment delete --name green" in errors[0]
    assert traffic(cloud) == {"blue": 100}  # read back through az: unchanged
    assert not [argv for argv in cloud.argvs() if "--traffic" in argv or "--mirror-traffic" in argv]
    kept = cloud.show("ml", "online-deployment", "show", "--name", "green", "--endpoint-name", ENDPOINT, *DEV)
    assert kept is not None  # left for inspection
    assert report(scratch_repo)["verdict"] == "fail"


def test_the_plan_shows_the_check_before_the_traffic_moves_and_prod_turns_it_on(tmp_path, make_repo) -> None:
    root = make_repo(tmp_path / "repo")
    enable_check(root)
    from tools.render.engine import render

    render("dev", root).write()
    ws = load_workspace("dev", root, layers="A")
    step_target = bluegreen.RolloutTarget("endpoints/deployment.yml", "blue", ENDPOINT, tuple(ws.scope()), (),
                                          ws.rollout, "endpoints/sample_score.json", "dev")  # fmt: skip
    moves = bluegreen.moves(step_target, "blue", "green")
    whats = [m.what for m in moves]
    assert whats.index("check") == whats.index("invoke") + 1 and whats.index("check") < whats.index("traffic")
    check = moves[whats.index("check")].argv
    assert check[:5] == ("python", "-m", "tools", "evaluate", "--online-check")
    words = dict(zip(check[5::2], check[6::2], strict=False))
    assert words["--candidate"] == "deployment:green" and words["--champion"] == "deployment:blue"
    assert words["--data"] == "data/sample/gate_sft.jsonl" and words["--rows"] == str(ROWS)  # data.gate.path
    assert words["--latency-margin-ms"] == "500" and words["--error-rate-margin"] == "0.05"
    script = bluegreen.script(step_target)
    assert script.index("--online-check") < script.index("=90")  # the first shift (steps 10, 50, 100)
    prod = load_workspace("prod", root, layers="A")
    assert prod.rollout["online_check"]["enabled"] is True
    dev_default = load_workspace("dev", make_repo(tmp_path / "fresh"), layers="A")
    assert "check" not in [m.what for m in bluegreen.moves(
        bluegreen.RolloutTarget("d.yml", "blue", ENDPOINT, (), (), dev_default.rollout, "r.json"), "blue", "green")]


def test_a_gate_path_that_is_not_local_is_one_line(tmp_path, make_repo) -> None:
    root = make_repo(tmp_path / "repo")
    prod = root / "workspaces" / "prod.yaml"
    prod.write_text(prod.read_text().replace("    data: data/sample/gate_sft.jsonl\n", ""))
    ws = load_workspace("prod", root, layers="A")
    with pytest.raises(UserError, match=r"rollout\.online_check\.data: null takes data\.gate\.path, which is "
                                        r"azureml://"):  # fmt: skip
        ws.rollout  # noqa: B018 - the property resolves the gate file
