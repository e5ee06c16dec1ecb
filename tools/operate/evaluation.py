"""The evaluation gate on the operate side: the verdict travels with the model version as tags, and promotion reads it.

The evaluate stage (``tools.operate.stages.evaluate_steps``: after register, before deploy) submits
`jobs/evaluate.yml` (candidate: the version the run registered; champion: what prod serves, or the base model
before the first promotion), waits for it, downloads its `report` output (`az ml job download --output-name report`
puts it in `<download-path>/named-outputs/report/`: azure-ai-ml `JobOperations.download`), reads the verdict with
``tools.evaluate.report`` (the one reader of `evaluation-report/1`) and records it on the registered version:

  eval_verdict      pass | fail | overridden (a promotion with --override-gate)
  eval_champion     the model it was compared with
  eval_gate_sha256  the gate set's sha256
  eval_report       where the report lives: azureml://jobs/<job>/outputs/report
  eval_override     the reason given with --override-gate

Tags are the mutable part of a model version: `az ml model update --set tags.k=v` changes them (and description,
stage), everything else of a version is immutable (learn.microsoft.com `how-to-manage-models`, "Update a model":
"only description and tags can be updated"; a change of anything else needs a new version). `promote` refuses a
version whose verdict is missing or `fail`, with one line naming the tag and the command that evaluates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.core.errors import CloudRefused, UserError
from tools.evaluate.report import ReportError, read_report, text_table
from tools.operate import commands
from tools.operate.az import Az

VERDICT_TAG, CHAMPION_TAG, GATE_TAG, REPORT_TAG, OVERRIDE_TAG = (
    "eval_verdict", "eval_champion", "eval_gate_sha256", "eval_report", "eval_override",
)  # fmt: skip
PASS, FAIL, OVERRIDDEN = "pass", "fail", "overridden"
EVALUATION_JOB = "evaluate.yml"  # the rendered evaluation job (jobs/evaluate.yml): never a training job
REPORT_OUTPUT = "report"
JOB_VAR, STATUS_VAR = "EVAL_JOB", "EVAL_STATUS"
VERDICT_VAR, CHAMPION_VAR, GATE_VAR = "EVAL_VERDICT", "EVAL_CHAMPION", "EVAL_GATE_SHA256"
READ_REPORT = (  # what the printed plan runs to read the verdict (apply reads it with tools.evaluate.report)
    'import json,sys; r=json.load(open(sys.argv[1])); print(r["verdict"],r["champion"]["id"],r["gate"]["sha256"])'
)


def report_uri(job: str) -> str:
    return f"azureml://jobs/{job}/outputs/{REPORT_OUTPUT}"


def report_folder(download_path: str) -> str:
    """Where `az ml job download --output-name report --download-path P` puts the output's files."""
    return f"{download_path}/named-outputs/{REPORT_OUTPUT}"


def verdict_tags(verdict: str, champion: str, gate_sha256: str, job: str) -> dict[str, str]:
    return {f"tags.{VERDICT_TAG}": verdict, f"tags.{CHAMPION_TAG}": champion, f"tags.{GATE_TAG}": gate_sha256,
            f"tags.{REPORT_TAG}": report_uri(job)}  # fmt: skip


def read_verdict(root: Path, download_path: str) -> dict[str, Any]:
    """The downloaded report, checked (ReportError -> CloudRefused: the job wrote something else)."""
    try:
        return read_report(root / report_folder(download_path))
    except ReportError as error:
        raise CloudRefused(f"the evaluation's report cannot be read: {error}") from None


def decide(report: dict[str, Any], variables: dict[str, str]) -> str:
    """Set the verdict variables from ``report``; print its table; return the step's outcome line."""
    variables[VERDICT_VAR] = str(report["verdict"])
    variables[CHAMPION_VAR] = str(report["champion"]["id"])
    variables[GATE_VAR] = str(report["gate"]["sha256"])
    for line in text_table(report).splitlines():
        print(f"    {line}", flush=True)
    return f"{report['verdict']}: {report['candidate']['id']} against {report['champion']['id']}"


def gate(variables: dict[str, str], candidate: str) -> str:
    """The verdict must be pass; a fail stops the run (the tags already say so)."""
    verdict = variables.get(VERDICT_VAR, "")
    if verdict != PASS:
        raise CloudRefused(
            f"step evaluate.gate: {candidate} did not pass the evaluation against {variables.get(CHAMPION_VAR)} "
            f"({VERDICT_TAG}={verdict}, recorded on the version; the table above says which metric): nothing after "
            "it ran"
        )
    return f"{candidate} may serve ({VERDICT_TAG}={PASS})"


def evaluate_command(workspace: str) -> str:
    return f"python -m tools apply --workspace {workspace} --stage evaluate --execute"


def check_gate(az: Az, model: dict[str, Any], ref: str, source: str, override: str | None) -> str:
    """Promotion's gate on a version's tags (``model``: `az ml model show` of it). Returns the verdict it carries;
    UserError (exit 1) when it is missing or fail and no override is given."""
    verdict = str((model.get("tags") or {}).get(VERDICT_TAG) or "")
    if verdict in (PASS, OVERRIDDEN) or override:
        return verdict
    state = f"has no {VERDICT_TAG} tag" if not verdict else f"has {VERDICT_TAG}={verdict}"
    raise UserError(
        f"{ref} {state} in workspace {source}: evaluate it with `{evaluate_command(source)}` (registered_model.version "
        f"= its version), or promote anyway with --override-gate \"REASON\"",
        exit_code=1,
    )


def record_override(az: Az, name: str, version: str, reason: str, scope: list[str] | tuple[str, ...]) -> None:
    tags = {f"tags.{VERDICT_TAG}": OVERRIDDEN, f"tags.{OVERRIDE_TAG}": reason}
    az.run(commands.model_set(name, version, tags, scope), f"record {VERDICT_TAG}={OVERRIDDEN} on {name}:{version}")
