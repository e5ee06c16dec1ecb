"""Values → template context: every derived value of the rendered specs is computed here, once, as pure functions
(GPU counts from the SKU table, the component's typed inputs, the run's display name, asset references)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from tools.core import arm
from tools.core.errors import UserError
from tools.core.repo import contract, models, sft_interface, sku_gpus
from tools.render.values import Values, load_values

REGISTRY_URI = "azureml://registries/{registry}/{noun}/{name}/{selector}"
IDENTITY_RESOURCE_ID = (
    "/subscriptions/{subscription}/resourceGroups/{resource_group}"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
)
JOB_NAME_PLACEHOLDER = "JOB_NAME"


def yaml_scalar(value: Any) -> str:
    """One value as a YAML 1.1 scalar that PyYAML (and so azure-ai-ml) reads back as exactly that value.

    Strings that would read as something else ("true", "16", "1e-8") are double-quoted; floats always carry a
    dot and a signed exponent (``5.0e-06``), because PyYAML reads ``5e-06`` as a string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            plain_ok = (
                value == value.strip() and "\n" not in value and yaml.load(f"k: {value}", Loader=loader) == {"k": value}
            )
        except yaml.YAMLError:
            plain_ok = False
        return value if plain_ok and value else json.dumps(value)
    raise TypeError(f"not a scalar: {value!r}")


def format_float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise UserError(f"{value!r}: not a finite number")
    text = repr(value)
    if "e" in text or "E" in text:
        mantissa, exponent = text.lower().split("e")
        if "." not in mantissa:
            mantissa += ".0"
        power = int(exponent)
        return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    return text if "." in text else text + ".0"


def to_contract_type(name: str, value: Any, spec: dict[str, Any]) -> Any:
    """A workspace value converted to the component input's declared type (string enums, integers, numbers)."""
    enum = spec.get("enum")
    if enum == ["true", "false"] and isinstance(value, bool):
        return "true" if value else "false"
    if enum and isinstance(value, int) and not isinstance(value, bool) and str(value) in enum:
        return str(value)
    if spec["type"] == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@dataclass(frozen=True)
class FinetuneInputs:
    """The merged, typed `finetune` inputs of the pipeline step, and what was dropped from the model defaults."""

    params: dict[str, Any]
    dropped_model_defaults: list[str]


def merge_finetune(values: Values) -> FinetuneInputs:
    """Model-specific defaults (catalog) under the workspace's own `finetune` values; non-inputs dropped."""
    inputs = contract()["inputs"]
    model = models().get(values.data["model"]["name"], {})
    defaults = model.get("finetune_defaults", {})
    dropped = sorted(key for key in defaults if key not in inputs)
    merged = {key: value for key, value in defaults.items() if key in inputs}
    merged.update(values.data["finetune"])
    typed = {key: to_contract_type(key, merged[key], inputs[key]) for key in inputs if key in merged}
    return FinetuneInputs(params=typed, dropped_model_defaults=dropped)


def check_model(values: Values) -> None:
    """The values' model must live in the registry the catalog names for it (a model from another registry, such as
    gpt-oss-20b in azureml-openai-oss, is written with that registry)."""
    model = values.data["model"]
    facts = models().get(model["name"])
    if facts and facts.get("registry") and facts["registry"] != model["registry"]:
        raise UserError(
            f"{values.where(('model', 'registry'))}: {model['name']} is in registry '{facts['registry']}', "
            f"not '{model['registry']}' (schemas/catalog/models.yaml, {facts.get('source', 'the catalog')})"
        )


def file_inputs(params: dict[str, Any]) -> list[tuple[str, str]]:
    """The `uri_file` inputs the values set (finetune_config_path, deepspeed, ...): (input name, path or URI)."""
    inputs = contract()["inputs"]
    return [(name, value) for name, value in params.items() if inputs[name]["type"] == "uri_file"]


def hyperparameter_string(value: Any) -> str:
    """A value as a `type: finetuning` hyperparameter: the service takes strings only (the SDK's
    CustomModelFineTuningSchema refuses anything else: "Not a valid string")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    return str(value)


# `finetune` values that describe the pipeline's own compute, not training: not hyperparameters of a finetuning job.
NOT_HYPERPARAMETERS_GROUPS = ("compute",)


def finetuning_job_context(values: Values) -> dict[str, Any]:
    """Where the `type: finetuning` job runs and its string hyperparameters: the workspace's own `finetune` values
    (the service applies the model's defaults itself) plus `finetuning_job.hyperparameters`, file inputs left out."""
    data = values.data
    job = data["finetuning_job"]
    inputs = contract()["inputs"]
    hyper = {
        name: hyperparameter_string(to_contract_type(name, value, inputs[name]))
        for name, value in data["finetune"].items()
        if inputs[name]["group"] not in NOT_HYPERPARAMETERS_GROUPS and inputs[name]["type"] != "uri_file"
    }
    hyper.update({name: hyperparameter_string(value) for name, value in job.get("hyperparameters", {}).items()})
    runs_on = job["runs_on"]
    instance_types = job.get("instance_types") or []
    if runs_on == "instance_types" and not instance_types:
        raise UserError(
            f"{values.where(('finetuning_job', 'runs_on'))}: instance_types needs finetuning_job.instance_types"
        )
    for index, sku in enumerate(instance_types):
        if sku_gpus(sku) is None:
            raise UserError(
                f"{values.where(('finetuning_job', 'instance_types', index))}: unknown VM size '{sku}' "
                "(add it to schemas/catalog/skus.yaml)"
            )
    return {
        "runs_on": runs_on,
        "compute": data["compute"]["cluster"]["name"] if runs_on == "cluster" else None,
        "instance_types": instance_types if runs_on == "instance_types" else [],
        "hyperparameters": dict(sorted(hyper.items())),
    }


def finetune_sku(values: Values) -> str:
    compute = values.data["compute"]
    if compute["mode"] == "cluster":
        return compute["cluster"]["size"]
    return compute["serverless"]["instance_type_finetune"]


def gpus_per_node(values: Values) -> int:
    sku = finetune_sku(values)
    gpus = sku_gpus(sku)
    key = (
        ("compute", "cluster", "size")
        if values.data["compute"]["mode"] == "cluster"
        else ("compute", "serverless", "instance_type_finetune")
    )
    if gpus is None:
        raise UserError(f"{values.where(key)}: unknown VM size '{sku}' (add it to schemas/catalog/skus.yaml)")
    if gpus == 0:
        raise UserError(f"{values.where(key)}: '{sku}' has no GPU; fine-tuning needs a GPU SKU")
    return gpus


def display_name(model_name: str, params: dict[str, Any], gpus: int) -> str:
    """The run name the original notebook builds:
    ``<model>-ultrachat-bs<total batch>-<scheduler>-ds<stage>|nods-lora|nolora-save_limit<n>-seqlen<n>``."""
    defaults = {name: spec.get("default") for name, spec in contract()["inputs"].items()}

    def get(key: str) -> Any:
        return params.get(key, defaults.get(key))

    batch = (
        int(get("per_device_train_batch_size"))
        * int(get("gradient_accumulation_steps"))
        * gpus
        * int(get("num_nodes_finetune"))
    )
    ds = f"ds{get('deepspeed_stage')}" if get("apply_deepspeed") == "true" else "nods"
    lora = "lora" if get("apply_lora") == "true" else "nolora"
    return (
        f"{model_name}-ultrachat-bs{batch}-{get('lr_scheduler_type')}-{ds}-{lora}"
        f"-save_limit{get('save_total_limit')}-seqlen{get('max_seq_length')}"
    )


def registry_uri(registry: str, noun: str, name: str, version: Any = None, label: str | None = None) -> str:
    selector = f"versions/{version}" if version is not None else f"labels/{label}"
    return REGISTRY_URI.format(registry=registry, noun=noun, name=name, selector=selector)


def champion_model_uri(values: Values, base_model_uri: str) -> str:
    """The evaluation's champion: what `evaluation.champion_workspace` (prod) serves from a registry, read from
    that workspace's values; the base model when it serves none (the first promotion) or serves the very version
    this workspace registers (a candidate is never its own champion: every margin would hold trivially)."""
    workspace = (values.data.get("evaluation") or {}).get("champion_workspace")
    if workspace and workspace != values.workspace:
        served = load_values(workspace).data["deployment"].get("model")
    else:
        served = values.data["deployment"].get("model")
    candidate = values.data.get("registered_model") or {}
    itself = bool(served) and (served.get("name"), str(served.get("version"))) == (
        candidate.get("name"), str(candidate.get("version")))
    if served and served.get("registry") and not itself:
        return registry_uri(served["registry"], "models", served["name"], served["version"])
    return base_model_uri


def build_context(values: Values, job_name: str | None = None) -> dict[str, Any]:
    """Everything the templates need, derived from one workspace's values."""
    data = values.data
    check_model(values)
    finetune = merge_finetune(values)
    files = file_inputs(finetune.params)
    gpus = gpus_per_node(values)
    compute = data["compute"]
    inputs = contract()["inputs"]
    stage_computes: dict[str, Any] = {}
    for stage in ("model_import", "preprocess", "finetune", "model_evaluation"):
        if compute["mode"] == "cluster":
            stage_computes[f"compute_{stage}"] = compute["cluster"]["name"]
        else:
            stage_computes[f"compute_{stage}"] = "serverless"
            stage_computes[f"instance_type_{stage}"] = compute["serverless"][f"instance_type_{stage}"]
    component = data["pipeline"]["component"]
    step_params = {
        **stage_computes,
        "number_of_gpu_to_use_finetuning": gpus,
        "task_name": "ChatCompletion",
        **{name: value for name, value in finetune.params.items() if name not in dict(files)},
    }
    groups = ("compute", "model", "data", "finetune", "evaluation")
    ordered = [
        (name, step_params[name])
        for group in groups
        for name, spec in inputs.items()
        if spec["group"] == group and name in step_params
    ]
    model = data["model"]
    serving = data["deployment"].get("model")
    if serving and serving.get("registry"):
        deployment_model = registry_uri(serving["registry"], "models", serving["name"], serving["version"])
    else:
        registered = serving or data["registered_model"]
        deployment_model = f"azureml:{registered['name']}:{registered['version']}"
    ws = data["workspace"]
    identity_id = IDENTITY_RESOURCE_ID.format(
        subscription=ws["subscription_id"], resource_group=ws["resource_group"], name=data["identity"]["name"]
    )
    return {
        "workspace_name": values.workspace,
        "values": data,
        "finetune_sku": finetune_sku(values),
        "gpus_per_node": gpus,
        "display_name": display_name(model["name"], finetune.params, gpus),
        "component_uri": registry_uri(
            component["registry"], "components", component["name"], component.get("version"), component.get("label")
        ),
        "base_model_uri": registry_uri(model["registry"], "models", model["name"], model["version"]),
        "champion_model_uri": champion_model_uri(
            values, registry_uri(model["registry"], "models", model["name"], model["version"])
        ),
        "step_inputs": ordered,
        "file_inputs": files,
        "finetuning_job": finetuning_job_context(values),
        "dropped_model_defaults": finetune.dropped_model_defaults,
        "deployment_model": deployment_model,
        "identity_resource_id": identity_id,
        "registry_resource_id": arm.registry_id(
            data["registry"]["subscription_id"], data["registry"]["resource_group"], data["registry"]["name"]
        ),
        "job_name": job_name or JOB_NAME_PLACEHOLDER,
        "sft_inputs": sft_interface()["inputs"],
        "sft_outputs": sft_interface()["outputs"],
        "sft_hyperparameters": {
            name: to_contract_type(name, value, sft_interface()["inputs"][name])
            for name, value in sorted(data["sft"]["hyperparameters"].items())
        },
    }
