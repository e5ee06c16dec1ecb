"""The evaluation gate against the stand-in `az`: the evaluate stage records the verdict on the registered version
as tags and stops a failed one before it deploys; promote refuses a version without a verdict and one with `fail`
(one line naming the tag and the command that evaluates it), and --override-gate promotes anyway and records why.
The verdict a report carries is the scenario's choice (the real evaluation component is tested in tests/evaluate)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.operate.output import outcomes

FAST = ("--layers", "ACD")
SUB = "00000000-0000-0000-0000-000000000000"
DEV = ["-g", "rg-ultrachat-dev", "-w", "mlw-ultrachat-dev", "--subscription", SUB]
MODEL = "phi4-ultrachat"
REGISTRY = "contoso-ml-registry"


def tags(cloud, version: str = "1", registry: bool = False) -> dict[str, str]:
    where = ["--registry-name", REGISTRY] if registry else DEV
    shown = cloud.show("ml", "model", "show", "--name", MODEL, "--version", version, *where)
    return shown.get("tags") or {}


def seed(cloud, root: Path, version: str = "1") -> None:
    cloud.az("ml", "model", "create", "-f", str(root / "models" / "finetuned-model.yml"), "--version", version,
             "--path", f"azureml://jobs/run_{version}/outputs/trained_model", *DEV)  # fmt: skip


def promote(cli, root: Path, *argv: str):
    return cli("promote", "--model", f"{MODEL}:1", "--root", str(root), *FAST, "--execute", *argv)


def test_evaluate_records_the_verdict_on_the_registered_version(scratch_repo, cloud, tools_cli) -> None:
    code, out, err = tools_cli("apply", "--workspace", "dev", "--root", str(scratch_repo), *FAST, "--stage",
                               "train,register,evaluate", "--execute")  # fmt: skip
    assert code == 0, err
    said = outcomes(out)
    assert said["evaluate.verdict"].startswith(f"pass: {MODEL}:1 against ")
    assert said["evaluate.gate"] == f"{MODEL}:1 may serve (eval_verdict=pass)"
    recorded = tags(cloud)
    gate = (scratch_repo / "data" / "sample" / "gate_sft.jsonl").read_bytes()
    assert recorded["eval_verdict"] == "pass"
    assert recorded["eval_gate_sha256"] == hashlib.sha256(gate).hexdigest()
    # prod's values name the very version dev registers: a candidate is never its own champion, so the base model
    assert recorded["eval_champion"].startswith("azureml://registries/azureml/models/")
    job = said["evaluate.job-submit"].split("=", 1)[1]
    assert recorded["eval_report"] == f"azureml://jobs/{job}/outputs/report"
    assert (scratch_repo / ".runs" / "evaluate" / job / "named-outputs" / "report" / "report.json").is_file()
    assert "nll" in out  # the table is shown


def test_a_failed_evaluation_is_recorded_and_stops_before_deploy(scratch_repo, cloud, tools_cli) -> None:
    cloud.eval_verdicts("fail")
    code, out, err = tools_cli("apply", "--workspace", "dev", "--root", str(scratch_repo), *FAST, "--stage",
                               "train,register,evaluate,deploy", "--execute")  # fmt: skip
    assert code == 1
    assert f"error: step evaluate.gate: {MODEL}:1 did not pass the evaluation against " in err
    assert tags(cloud)["eval_verdict"] == "fail"
    assert not [a for a in cloud.argvs() if a[1] in ("online-endpoint", "online-deployment")]


def test_model_update_changes_tags_only(scratch_repo, cloud) -> None:
    seed(cloud, scratch_repo)
    before = cloud.show("ml", "model", "show", "--name", MODEL, "--version", "1", *DEV)
    cloud.az("ml", "model", "update", "--name", MODEL, "--version", "1", "--set", "tags.k=v", "--set",
             "description=d", *DEV)  # fmt: skip
    after = cloud.show("ml", "model", "show", "--name", MODEL, "--version", "1", *DEV)
    assert after["tags"] == {**before["tags"], "k": "v"} and after["description"] == "d"
    assert {k: v for k, v in after.items() if k not in ("tags", "description")} == {
        k: v for k, v in before.items() if k not in ("tags", "description")}  # fmt: skip
    refused = cloud.az("ml", "model", "update", "--name", MODEL, "--version", "1", "--set", "path=elsewhere", *DEV,
                       check=False)  # fmt: skip
    assert refused.returncode != 0 and "immutable" in refused.stderr


def test_promote_refuses_a_version_without_a_verdict(scratch_repo, cloud, tools_cli) -> None:
    seed(cloud, scratch_repo)
    before = (scratch_repo / "workspaces" / "prod.yaml").read_text()
    code, out, err = promote(tools_cli, scratch_repo)
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: {MODEL}:1 has no eval_verdict tag in workspace dev: evaluate it with `python -m tools apply "
        "--workspace dev --stage evaluate --execute` (registered_model.version = its version), or promote anyway "
        'with --override-gate "REASON"'
    ]
    assert not [a for a in cloud.argvs() if a[2] == "share"]
    assert (scratch_repo / "workspaces" / "prod.yaml").read_text() == before


def test_promote_refuses_a_failed_version(scratch_repo, cloud, tools_cli) -> None:
    seed(cloud, scratch_repo)
    cloud.az("ml", "model", "update", "--name", MODEL, "--version", "1", "--set", "tags.eval_verdict=fail", *DEV)
    code, _, err = promote(tools_cli, scratch_repo)
    assert code == 1 and f"error: {MODEL}:1 has eval_verdict=fail in workspace dev: evaluate it with" in err
    assert not [a for a in cloud.argvs() if a[2] == "share"]


def test_override_gate_promotes_and_records_the_reason(scratch_repo, cloud, tools_cli) -> None:
    seed(cloud, scratch_repo)
    cloud.az("ml", "model", "update", "--name", MODEL, "--version", "1", "--set", "tags.eval_verdict=fail", *DEV)
    code, out, err = promote(tools_cli, scratch_repo, "--override-gate", "hotfix approved by the on-call lead")
    assert code == 0, err
    for registry in (False, True):  # the workspace version, and the copy the registry received after it
        recorded = tags(cloud, registry=registry)
        assert recorded["eval_verdict"] == "overridden"
        assert recorded["eval_override"] == "hotfix approved by the on-call lead"
    assert "promoted anyway (--override-gate" in out
    code, _, err = promote(tools_cli, scratch_repo, "--override-gate", " ")
    assert code == 2 and "--override-gate needs a reason" in err


def test_show_evaluation_prints_the_table_of_an_evaluated_version(scratch_repo, cloud, tools_cli) -> None:
    code, _, err = tools_cli("apply", "--workspace", "dev", "--root", str(scratch_repo), *FAST, "--stage",
                             "train,register,evaluate", "--execute")  # fmt: skip
    assert code == 0, err
    code, out, err = tools_cli("promote", "--model", f"{MODEL}:1", "--root", str(scratch_repo), *FAST,
                               "--show-evaluation")  # fmt: skip
    assert code == 0, err
    assert out.startswith(f"### Evaluation of {MODEL}:1: eval_verdict=pass") and "| nll |" in out
