"""The gate set stays out of training: a job spec that binds it, by local path, datastore URI or data asset, is an
error (rule ``gate-set-in-training``). The verdict a model version carries is computed on the gate set, so a model
that trained or validated on it would be judged on data it has seen.

What the gate set is: every ``data`` spec being validated whose ``tags.role`` is ``gate`` (templates/data/
gate-sft.yml.j2; its asset name and its path), and any file named ``gate*.jsonl`` (what ``python -m tools data
prepare`` writes for it). The evaluation's own job (a pipeline whose steps run components/evaluate) may bind it.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from tools.validate.document import Spec
from tools.validate.rules._walk import walk
from tools.validate.rules.support import Emit, RuleContext

TRAINING_KINDS = ("pipelineJob", "commandJob", "sweepJob", "finetuningJob", "distillationJob", "autoMLJob", "sparkJob")
EVALUATE_COMPONENT = ("components/evaluate/", "evaluate_chat_model")
GATE_FILE = re.compile(r"^gate[^/]*\.jsonl$")
ASSET = re.compile(r"^azureml:(?!//)([^:@/]+)(?:[:@].*)?$")


def gate_assets(context: RuleContext) -> tuple[set[str], set[str]]:
    """(asset names, resolved paths and URIs) of the gate set among the specs validated together (found once per
    validation run: every job spec asks)."""
    if "gate_assets" not in context.memo:
        context.memo["gate_assets"] = _gate_assets(context)
    return context.memo["gate_assets"]


def _gate_assets(context: RuleContext) -> tuple[set[str], set[str]]:
    names: set[str] = set()
    paths: set[str] = set()
    for spec in context.specs:
        data = spec.data or {}
        tags = data.get("tags") if isinstance(data.get("tags"), dict) else {}
        if spec.kind != "data" or tags.get("role") != "gate":
            continue
        if isinstance(data.get("name"), str):
            names.add(data["name"])
        if isinstance(data.get("path"), str):
            paths.add(_resolved(spec, data["path"]))
    return names, paths


def _resolved(spec: Spec, value: str) -> str:
    if "://" in value:
        return value.rstrip("/")
    return str((spec.path.parent / value).resolve())


def _evaluates(data: dict[str, Any]) -> bool:
    jobs = data.get("jobs") if isinstance(data.get("jobs"), dict) else {}
    for step in jobs.values():
        component = step.get("component") if isinstance(step, dict) else None
        if isinstance(component, str) and any(marker in component for marker in EVALUATE_COMPONENT):
            return True
    return False


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    if spec.kind not in TRAINING_KINDS or not isinstance(data, dict) or _evaluates(data):
        return
    names, paths = gate_assets(context)
    for key_path, value in walk(data):
        if not isinstance(value, str) or not value or "${{" in value or "\n" in value:
            continue
        asset = ASSET.match(value)
        if asset:
            hit = asset.group(1) in names
        elif key_path and key_path[-1] in ("path", "training_data", "validation_data") or value.endswith(".jsonl"):
            name = PurePosixPath(value.split("?")[0]).name
            hit = bool(GATE_FILE.match(name)) or _resolved(spec, value) in paths
        else:
            hit = False
        if hit:
            emit(key_path, f"binds the gate set {value!r} in a training job: the evaluation verdict is computed on "
                           "it, so nothing may train or validate on it; bind the validation split (data.test)",
                 rule="gate-set-in-training")  # fmt: skip
