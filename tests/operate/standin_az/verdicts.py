"""The stand-in's model tags and evaluation jobs (imported by az.py beside it).

  az ml model update --name N --version V [--registry-name R] --set path=value ...
      A model version's tags, description and stage change; every other field is immutable and refused
      (learn.microsoft.com `how-to-manage-models`, "Update a model": only description and tags can be updated,
      anything else needs a new version; `stage` is the third mutable property of azure-ai-ml's `Model`).
  az ml job download --name J --output-name report --download-path P
      Writes the job's `report` output into P/named-outputs/report/ (azure-ai-ml `JobOperations.download`). For an
      evaluation job (inputs candidate_model and champion_model, an output `report`) the stand-in writes an
      `evaluation-report/1` whose verdict the test chose (control `eval_verdicts`, in submission order, default
      pass); the real component is tested locally in tests/evaluate.
Downloading is allowed once the job is terminal (azure-ai-ml refuses other states).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MUTABLE = ("tags", "description", "stage")
TERMINAL = ("Completed", "Failed", "Canceled")


def model_update(cloud: Any, refused: Any, not_found: Any) -> dict[str, Any]:
    args = cloud.args
    name, version = args.need("--name"), str(args.need("--version"))
    registry = args.get("--registry-name")
    if isinstance(registry, str):
        table = cloud.state.setdefault("registries", {}).setdefault(registry, {}).setdefault("models", {})
    else:
        table = cloud.table("models")
    model = table.get(name, {}).get(version)
    if model is None:
        raise not_found(f"model {name}:{version}")
    for pair in args.sets:
        path, sep, value = pair.partition("=")
        field, _, key = path.partition(".")
        if not sep or field not in MUTABLE or (field == "tags") != bool(key):
            raise refused(f"ERROR: (UserError) {path} of model {name}:{version} cannot be changed: a model version is "
                          "immutable except its tags, description and stage (create a new version)")  # fmt: skip
        if field == "tags":
            model.setdefault("tags", {})[key] = value
        else:
            model[field] = value
    return model


def on_job_create(cloud: Any, name: str, data: dict[str, Any], spec_file: str) -> None:
    """Remember an evaluation job's verdict (the next one the test queued) and where its gate file is."""
    inputs = data.get("inputs") or {}
    if "report" not in (data.get("outputs") or {}) or "candidate_model" not in inputs:
        return
    queued = cloud.control.setdefault("eval_verdicts", [])
    verdict = queued.pop(0) if queued else "pass"
    cloud.control.setdefault("eval_jobs", {})[name] = {"verdict": verdict, "spec_dir": str(Path(spec_file).parent)}


def _report(job: dict[str, Any], facts: dict[str, str]) -> dict[str, Any]:
    inputs, step = job.get("inputs") or {}, ((job.get("jobs") or {}).get("evaluate") or {}).get("inputs") or {}
    gate = str((inputs.get("gate_data") or {}).get("path", ""))
    local = Path(facts["spec_dir"]) / gate
    body = local.read_bytes() if local.is_file() else gate.encode()
    verdict = facts["verdict"]
    nll = {"candidate": 1.9 if verdict == "pass" else 2.6, "champion": 2.1}
    delta = nll["candidate"] - nll["champion"]
    return {
        "schema": "evaluation-report/1",
        "candidate": {"id": str(step.get("candidate_id") or inputs["candidate_model"]["path"])},
        "champion": {"id": str(step.get("champion_id") or inputs["champion_model"]["path"])},
        "gate": {"path": gate, "sha256": hashlib.sha256(body).hexdigest(), "rows": body.count(b"\n")},
        "seed": 0, "libraries": {"stand-in": "1"},
        "metrics": {"nll": {**nll, "delta": delta, "ci95": [delta - 0.05, delta + 0.05], "direction": "lower",
                            "floor": None, "margin": 0.05, "passed": verdict == "pass",
                            "why": "within the margin" if verdict == "pass" else "worse than the champion"}},
        "verdict": verdict, "reasons": [] if verdict == "pass" else ["nll: worse than the champion beyond 0.05"],
    }  # fmt: skip


def job_download(cloud: Any, refused: Any, not_found: Any) -> None:
    args = cloud.args
    job = cloud.table("jobs").get(args.need("--name"))
    if job is None:
        raise not_found(f"job {args.get('--name')}")
    if job["status"] not in TERMINAL:
        raise refused(f"ERROR: This job is in state {job['status']}. Download is allowed only in states {TERMINAL}")
    output = args.get("--output-name")
    folder = Path(str(args.get("--download-path", ".")))
    if not isinstance(output, str):  # --all: the logs
        (folder / "artifacts").mkdir(parents=True, exist_ok=True)
        return
    if output not in (job.get("outputs") or {}):
        raise refused(f"ERROR: job {job['name']} has no output {output}")
    target = folder / "named-outputs" / output
    target.mkdir(parents=True, exist_ok=True)
    facts = cloud.control.get("eval_jobs", {}).get(job["name"])
    if facts is not None and output == "report":
        (target / "report.json").write_text(json.dumps(_report(job, facts), indent=2) + "\n")
