"""The model catalog and SKU table (schemas/catalog/): fine-tuning and inference SKU allow-lists, GPU counts per
node, retired models, unknown VM sizes, retired VM sizes.

Retired VM sizes: the SKU table's ``retired_on: "YYYY-MM-DD"`` (or ``retired: true``/a date), read through
``tools.core.repo``. An AmlCompute cluster's ``size``, a serverless ``instance_type_*`` input of a registry
component step (given, or the component's default when the step runs serverless), a job's or step's
``resources.instance_type`` and an online deployment's ``instance_type`` on a size retired by today are errors
(Azure can no longer allocate it: cluster creation, the job and the deployment fail); a size with a retirement date
still ahead is a warning. Sources: the table's ``retired_source`` per size.
"""

from __future__ import annotations

import datetime
from typing import Any

from tools.core.repo import active, models, sku_gpus
from tools.validate.document import Spec
from tools.validate.expressions import OPEN, parent_binding
from tools.validate.findings import WARNING
from tools.validate.interfaces import step_contract
from tools.validate.references import WORKSPACE_ASSET, model_name_from_uri
from tools.validate.rules.support import Emit, RuleContext


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    _retired_sizes(spec, data, emit)
    if spec.kind == "pipelineJob":
        top_inputs = data.get("inputs") or {}
        jobs = data.get("jobs")
        for step_name, step in jobs.items() if isinstance(jobs, dict) else []:
            if isinstance(step, dict):
                contract, _ = step_contract(spec, step)
                inputs = step.get("inputs")
                if contract and isinstance(inputs, dict):
                    _finetune_compute(("jobs", step_name), inputs, top_inputs, emit, context, contract["inputs"])
        for name, value in top_inputs.items() if isinstance(top_inputs, dict) else []:
            if isinstance(value, dict):
                retired(model_name_from_uri(value.get("path")), ("inputs", name, "path"), emit, "fine-tuning it")
    elif spec.kind == "amlCompute":
        size = data.get("size")
        if isinstance(size, str) and sku_gpus(size) is None:
            emit(("size",), f"unknown VM size {size} (add it to schemas/catalog/skus.yaml)", WARNING, "sku")
    elif spec.kind == "managedOnlineDeployment":
        _deployment(data, emit, context)


def retired(model_name: str | None, key_path: tuple, emit: Emit, purpose: str) -> None:
    facts = models().get(model_name or "")
    if facts and facts.get("status") == "retired":
        alternatives = ", ".join(facts.get("alternatives") or []) or "none recorded"
        emit(
            key_path,
            f"{model_name} is RETIRED ({facts.get('retired_note', 'retired')}): {purpose} will fail in "
            f"Azure; active alternatives: {alternatives}",
            WARNING,
            "retired-model",
        )


def _resolve_input(value: Any, top_inputs: Any) -> Any:
    bound = parent_binding(value)
    if bound and bound[0] == "inputs" and isinstance(top_inputs, dict):
        target = top_inputs.get(bound[1])
        return target.get("path") if isinstance(target, dict) else target
    if isinstance(value, dict):
        return value.get("path")
    return value


def _finetune_compute(base: tuple, inputs: dict, top_inputs: Any, emit: Emit, context, declared: dict) -> None:
    model_name = model_name_from_uri(_resolve_input(inputs.get("mlflow_model_path"), top_inputs))
    if model_name is None or "compute_finetune" not in declared:
        return
    compute = inputs.get("compute_finetune", declared["compute_finetune"].get("default"))
    if compute == "serverless":
        sku = inputs.get("instance_type_finetune", declared["instance_type_finetune"].get("default"))
        sku_key = (*base, "inputs", "instance_type_finetune")
    else:
        sku = context.computes.get(str(compute).removeprefix("azureml:"))
        sku_key = (*base, "inputs", "compute_finetune")
        if sku is None:
            return  # the cluster spec is not part of this validation run
    if not isinstance(sku, str):
        return
    facts = models().get(model_name)
    allowed = (facts or {}).get("finetune_skus") or []
    if allowed and sku.lower() not in {s.lower() for s in allowed}:
        emit(
            sku_key,
            f"{sku} is not on {model_name}'s fine-tuning allow-list ({', '.join(allowed)})",
            rule="sku-allow-list",
        )
    gpus = sku_gpus(sku)
    requested = inputs.get("number_of_gpu_to_use_finetuning", declared["number_of_gpu_to_use_finetuning"]["default"])
    if gpus is None:
        emit(sku_key, f"unknown VM size {sku} (add it to schemas/catalog/skus.yaml)", WARNING, "sku")
    elif gpus == 0:
        emit(sku_key, f"{sku} has no GPU; fine-tuning needs a GPU SKU", rule="sku")
    elif isinstance(requested, int) and requested != gpus:
        emit(
            (*base, "inputs", "number_of_gpu_to_use_finetuning"),
            f"{requested} GPUs requested but {sku} has {gpus} per node (it must equal the SKU's GPU count)",
            rule="gpu-count",
        )


def base_model_of(model: Any, context: RuleContext) -> str | None:
    """The catalog model a deployment ultimately serves: directly, or via the registered model's base_model tag."""
    if not isinstance(model, str):
        return None
    direct = model_name_from_uri(model)
    if direct in models():
        return direct
    name = direct
    if name is None:
        match = WORKSPACE_ASSET.match(model)
        name = match["name"] if match else None
    return model_name_from_uri(context.registered_models.get(name or ""))


def _deployment(data: dict, emit: Emit, context) -> None:
    base_model = base_model_of(data.get("model"), context)
    if not base_model:
        return
    retired(base_model, ("model",), emit, "serving it")
    allowed = (models().get(base_model) or {}).get("inference_skus") or []
    sku = data.get("instance_type")
    if isinstance(sku, str) and allowed and sku.lower() not in {s.lower() for s in allowed}:
        emit(
            ("instance_type",),
            f"{sku} is not on {base_model}'s inference allow-list ({', '.join(allowed)})",
            rule="sku-allow-list",
        )
    elif isinstance(sku, str) and not allowed:
        emit(
            ("instance_type",),
            f"no inference allow-list recorded for {base_model} in schemas/catalog/models.yaml",
            WARNING,
            "sku-allow-list",
        )


# ----------------------------------------------------------------------------------------------- retired VM sizes


def retirement(size: Any, today: datetime.date | None = None) -> tuple[str, str, str] | None:
    """``(severity, date, source)`` when the SKU table records ``size`` as retired (error: on or before ``today``)
    or retiring (warning: a date still ahead); None otherwise or for an unknown size."""
    if not isinstance(size, str) or OPEN in size:
        return None
    facts = active().sku(size)
    if not facts:
        return None
    when = facts.get("retired_on", facts.get("retired"))
    if when in (None, False):
        return None
    source = str(facts.get("retired_source", "schemas/catalog/skus.yaml"))
    if when is True:
        return "error", "", source
    day = when if isinstance(when, datetime.date) else _date(str(when))
    if day is None:
        return "error", str(when), source
    return ("error" if day <= (today or datetime.date.today()) else WARNING), day.isoformat(), source


def _date(text: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        return None


def _flag_size(key_path: tuple, size: Any, what: str, emit: Emit, note: str = "", cap: str = "error") -> None:
    """``cap``: the highest severity (a component's declared default is a warning: no run uses it yet)."""
    found = retirement(size)
    if found is None:
        return
    severity, day, source = found
    past = severity == "error"
    severity = WARNING if cap == WARNING else severity
    when = f" on {day}" if day else ""
    if past:
        message = f"{size} was retired{when} ({source}): {what} on it fails in Azure; pick an active size{note}"
    else:
        message = f"{size} retires{when} ({source}): {what} on it will fail from then on{note}"
    emit(key_path, message, severity, "retired-sku")


def _retired_sizes(spec: Spec, data: dict, emit: Emit) -> None:
    if spec.kind == "amlCompute":
        _flag_size(("size",), data.get("size"), "a cluster", emit)
        return
    if spec.kind in ("managedOnlineDeployment", "kubernetesOnlineDeployment"):
        _flag_size(("instance_type",), data.get("instance_type"), "a deployment", emit)
        return
    resources = data.get("resources")
    if isinstance(resources, dict):
        _flag_size(("resources", "instance_type"), resources.get("instance_type"), "a serverless job", emit)
    cap = WARNING if str(spec.kind).endswith("Component") else "error"
    for name, value in (data.get("inputs") or {}).items() if isinstance(data.get("inputs"), dict) else []:
        if isinstance(name, str) and name.startswith("instance_type"):
            for key in ("default", "value") if isinstance(value, dict) else ():
                _flag_size(("inputs", name, key), value.get(key), "a serverless step", emit, cap=cap)
            if isinstance(value, str):
                _flag_size(("inputs", name), value, "a serverless step", emit, cap=cap)
    jobs = data.get("jobs")
    for step_name, step in jobs.items() if isinstance(jobs, dict) else []:
        if isinstance(step, dict):
            _retired_step(spec, ("jobs", step_name), step, emit)


def _retired_step(spec: Spec, base: tuple, step: dict, emit: Emit) -> None:
    resources = step.get("resources")
    if isinstance(resources, dict):
        _flag_size((*base, "resources", "instance_type"), resources.get("instance_type"), "a serverless step", emit)
    inputs = step.get("inputs") if isinstance(step.get("inputs"), dict) else {}
    for name, value in inputs.items():
        if isinstance(name, str) and name.startswith("instance_type"):
            _flag_size((*base, "inputs", name), value, "a serverless stage", emit)
    contract, _ = step_contract(spec, step)
    for name, facts in (contract or {}).get("inputs", {}).items():
        if not name.startswith("instance_type_") or name in inputs or not isinstance(facts, dict):
            continue
        stage = name.removeprefix("instance_type_")
        compute = inputs.get(f"compute_{stage}", (contract["inputs"].get(f"compute_{stage}") or {}).get("default"))
        if isinstance(compute, str) and compute.strip().lower() == "serverless":
            note = f" (the component's default {name}; set it, or compute_{stage}, in the step's inputs)"
            _flag_size((*base, "inputs"), facts.get("default"), f"the serverless {stage} stage", emit, note)
