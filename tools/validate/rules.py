"""Layer D, the repo's own rules: what azure-ai-ml and the published schemas let through but Azure (or a reviewer)
would reject later. Data bindings resolve; registry component steps match the committed contract; registry URIs
are well-formed; SKUs are on the model's allow-lists and GPU counts match; names follow Azure's rules; numbers are
in range; local files exist; retired models are flagged; prod pins everything. Pure functions over parsed specs."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.core.repo import contracts, models, sku_gpus
from tools.validate.document import DATA_TYPES, MODEL_TYPES, Spec
from tools.validate.findings import ERROR, WARNING, Finding

BINDING = re.compile(
    r"\$\{\{\s*parent\.(inputs|outputs|jobs)\.([A-Za-z0-9_]+)(?:\.(outputs|inputs)\.([A-Za-z0-9_]+))?\s*\}\}"
)
ANY_BINDING = re.compile(r"\$\{\{\s*([^}]*)\}\}")
REGISTRY_ASSET = re.compile(
    r"^azureml://registries/(?P<registry>[A-Za-z0-9][A-Za-z0-9_-]{2,32})/(?P<noun>components|models|environments|data)"
    r"/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)/(?:(?P<sel>versions|labels)/(?P<ref>[A-Za-z0-9][A-Za-z0-9._-]*))$"
)
JOB_OUTPUT = re.compile(r"^azureml://jobs/[A-Za-z0-9_-]+/outputs/[A-Za-z0-9_]+(/.*)?$")
DATASTORE_PATH = re.compile(
    r"^azureml://(subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?datastores/[A-Za-z0-9_]+/paths/.+$"
)
WORKSPACE_ASSET = re.compile(
    r"^azureml:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<version>[A-Za-z0-9._-]+)|@(?P<label>[A-Za-z0-9_-]+))?$"
)
ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
COMPUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,15}$")
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
PROBE_KEYS = ("initial_delay", "period", "timeout", "success_threshold", "failure_threshold")
MAX_REQUEST_TIMEOUT_MS = 180000
MIN_PROD_INSTANCES = 2


@dataclass
class RuleContext:
    """What rules may look up across files: every spec being validated together, and the workspace policy."""

    specs: list[Spec]
    policy: str = "default"  # "prod" adds the promotion policy
    computes: dict[str, str] = field(default_factory=dict)  # cluster name -> VM size
    registered_models: dict[str, str] = field(default_factory=dict)  # model name -> base model URI (tag)

    def __post_init__(self) -> None:
        for spec in self.specs:
            data = spec.data or {}
            if spec.kind == "amlCompute" and isinstance(data.get("name"), str):
                self.computes[data["name"]] = str(data.get("size", ""))
            if spec.kind == "model" and isinstance(data.get("name"), str):
                tags = data.get("tags") or {}
                if isinstance(tags, dict) and isinstance(tags.get("base_model"), str):
                    self.registered_models[data["name"]] = tags["base_model"]


Emit = Callable[..., None]


def check_specs(context: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for spec in context.specs:
        if spec.data is None or spec.kind is None:
            continue

        def emit(key_path: tuple, message: str, severity: str = ERROR, rule: str = "", _spec: Spec = spec) -> None:
            findings.append(_spec.finding(key_path, message, "D", severity, rule))

        _uris(spec, emit, context)
        checker = _CHECKS.get(spec.kind)
        if checker:
            checker(spec, emit, context)
    return findings


# ----------------------------------------------------------------------------------------------- shared pieces


def _walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))
    else:
        yield path, node


def _uris(spec: Spec, emit: Emit, context: RuleContext) -> None:
    """Every azureml: reference in the spec is well-formed; prod pins every version."""
    for path, value in _walk(spec.data):
        if not isinstance(value, str) or path == ("$schema",):
            continue
        if value.startswith("azureml://registries/"):
            match = REGISTRY_ASSET.match(value)
            if not match:
                emit(
                    path,
                    f"malformed registry URI {value!r} (expected azureml://registries/<registry>/"
                    "<components|models|environments|data>/<name>/versions/<version> or .../labels/<label>)",
                    rule="registry-uri",
                )
            elif match["sel"] == "labels" and context.policy == "prod":
                emit(path, f"prod policy: pin a version instead of labels/{match['ref']} ({value})", rule="prod-pin")
        elif value.startswith("azureml://jobs/"):
            if not JOB_OUTPUT.match(value):
                emit(
                    path,
                    f"malformed job output URI {value!r} (expected azureml://jobs/<job>/outputs/<output>)",
                    rule="job-uri",
                )
        elif value.startswith("azureml://"):
            if not DATASTORE_PATH.match(value):
                emit(
                    path,
                    f"malformed azureml URI {value!r} (expected azureml://registries/..., azureml://jobs/... "
                    "or azureml://datastores/<datastore>/paths/<path>)",
                    rule="uri",
                )
        elif value.startswith("azureml:") and path[-1] in ("path", "model", "environment", "component", "compute"):
            match = WORKSPACE_ASSET.match(value)
            if not match:
                emit(path, f"malformed asset reference {value!r} (expected azureml:<name>:<version>)", rule="asset-ref")
            elif context.policy == "prod" and path[-1] != "compute" and not match["version"]:
                emit(path, f"prod policy: pin a version ({value} has none)", rule="prod-pin")


def _model_name_from_uri(uri: Any) -> str | None:
    match = REGISTRY_ASSET.match(uri) if isinstance(uri, str) else None
    return match["name"] if match and match["noun"] == "models" else None


def _retired(model_name: str | None, key_path: tuple, emit: Emit, purpose: str) -> None:
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


def _local_path(spec: Spec, key_path: tuple, value: Any, emit: Emit, what: str) -> None:
    """A local (non-URI) path must exist relative to the spec file."""
    if not isinstance(value, str) or ":" in value.split("/")[0] or value.startswith("${{"):
        return
    target = (spec.path.parent / value).resolve()
    if not target.exists():
        emit(
            key_path,
            f"{what} {value!r} does not exist (looked for {relative_display(target, Path.cwd())}); "
            "run `python -m tools data prepare` or fix the path",
            rule="local-path",
        )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# ----------------------------------------------------------------------------------------------- pipeline jobs


def _check_pipeline_job(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    top_inputs = data.get("inputs") or {}
    top_outputs = data.get("outputs") or {}
    jobs = data.get("jobs") or {}
    if not isinstance(jobs, dict):
        return
    for path, value in _walk(jobs, ("jobs",)):
        if not isinstance(value, str):
            continue
        for match in ANY_BINDING.finditer(value):
            expression = match.group(0)
            bound = BINDING.fullmatch(expression)
            if not bound:
                emit(
                    path,
                    f"unrecognised binding {expression} (expected ${{{{parent.inputs.X}}}}, "
                    "${{parent.outputs.X}} or ${{parent.jobs.STEP.outputs.X}})",
                    rule="binding",
                )
                continue
            scope, name = bound.group(1), bound.group(2)
            table = {"inputs": top_inputs, "outputs": top_outputs, "jobs": jobs}[scope]
            if not isinstance(table, dict) or name not in table:
                known = sorted(table) if isinstance(table, dict) else []
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else (f" (defined: {', '.join(known)})" if known else "")
                emit(
                    path,
                    f"dangling binding {expression}: the pipeline has no {scope[:-1] if scope != 'jobs' else 'step'} "
                    f"'{name}'{hint}",
                    rule="binding",
                )
    for step_name, step in jobs.items():
        if isinstance(step, dict):
            _check_scale(step, ("jobs", step_name), emit)
            _check_step(spec, ("jobs", step_name), step, top_inputs, top_outputs, emit, context)
    for name, value in top_inputs.items() if isinstance(top_inputs, dict) else []:
        if isinstance(value, dict):
            _local_path(spec, ("inputs", name, "path"), value.get("path"), emit, "input file")
            _retired(_model_name_from_uri(value.get("path")), ("inputs", name, "path"), emit, "fine-tuning it")


def _check_step(
    spec: Spec, base: tuple, step: dict, top_inputs: Any, top_outputs: Any, emit: Emit, context: RuleContext
) -> None:
    component = step.get("component")
    match = REGISTRY_ASSET.match(component) if isinstance(component, str) else None
    if isinstance(component, str) and not component.startswith("azureml:"):
        contract = _local_component_contract(spec.path.parent / component)
        if contract is None:
            return  # missing or unreadable: layer B reports it
    elif not match or match["noun"] != "components":
        return
    else:
        contract = contracts().get(match["name"])
        if contract is None:
            emit(
                (*base, "component"),
                f"registry component {match['name']} has no committed contract in "
                "schemas/contracts/: its inputs cannot be checked",
                WARNING,
                "contract",
            )
            return
        if match["sel"] == "versions" and str(match["ref"]) != str(contract["version"]):
            emit(
                (*base, "component"),
                f"{match['name']} version {match['ref']} differs from the committed contract "
                f"version {contract['version']}: update schemas/contracts/{match['name']}.yaml first",
                rule="contract",
            )
    declared = contract["inputs"]
    step_inputs = step.get("inputs") or {}
    if not isinstance(step_inputs, dict):
        return
    for name, value in step_inputs.items():
        key = (*base, "inputs", name)
        if name not in declared:
            close = difflib.get_close_matches(str(name), list(declared), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            emit(
                key,
                f"'{name}' is not an input of {contract['name']} {contract['version']}{hint}",
                rule="contract-input",
            )
            continue
        _check_input_value(key, value, declared[name], top_inputs, emit, contract)
    for name, facts in declared.items():
        if not facts.get("optional", True) and "default" not in facts and name not in step_inputs:
            emit((*base, "inputs"), f"required input '{name}' of {contract['name']} is missing", rule="contract-input")
    outputs = step.get("outputs") or {}
    for name, value in outputs.items() if isinstance(outputs, dict) else []:
        key = (*base, "outputs", name)
        if name not in contract.get("outputs", {}):
            close = difflib.get_close_matches(str(name), list(contract.get("outputs", {})), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            emit(key, f"'{name}' is not an output of {contract['name']}{hint}", rule="contract-output")
            continue
        bound = BINDING.fullmatch(value.strip()) if isinstance(value, str) else None
        if bound and bound.group(1) == "outputs" and isinstance(top_outputs, dict):
            target = top_outputs.get(bound.group(2))
            expected = contract["outputs"][name]["type"]
            if isinstance(target, dict) and target.get("type") not in (None, expected):
                emit(
                    key,
                    f"binds {contract['name']} output '{name}' ({expected}) to pipeline output "
                    f"'{bound.group(2)}' of type {target.get('type')}",
                    rule="contract-output",
                )
    _check_finetune_compute(spec, base, step_inputs, top_inputs, emit, context, declared)


def _local_component_contract(path: Path) -> dict | None:
    """A local component spec's interface in the shape of a committed contract (inputs, outputs)."""
    from tools.core.yamlio import YamlProblem, load_lined

    try:
        data = load_lined(path.read_text())
    except (OSError, YamlProblem):
        return None
    if not isinstance(data, dict):
        return None
    inputs = {}
    for name, facts in (data.get("inputs") or {}).items():
        facts = facts if isinstance(facts, dict) else {}
        entry = {"type": facts.get("type", "string"), "optional": bool(facts.get("optional", False))}
        if "default" in facts:
            entry["default"] = facts["default"]
        if isinstance(facts.get("enum"), list):
            entry["enum"] = [str(e) for e in facts["enum"]]
        if "min" in facts:
            entry["min"] = facts["min"]
        inputs[name] = entry
    outputs = {name: {"type": (facts or {}).get("type")} for name, facts in (data.get("outputs") or {}).items()}
    return {"name": data.get("name", path.name), "version": data.get("version"), "inputs": inputs, "outputs": outputs}


def _check_input_value(key: tuple, value: Any, facts: dict, top_inputs: Any, emit: Emit, contract: dict) -> None:
    expected = facts["type"]
    enum = facts.get("enum")
    if isinstance(value, str) and BINDING.fullmatch(value.strip()):
        bound = BINDING.fullmatch(value.strip())
        if bound.group(1) == "inputs" and isinstance(top_inputs, dict):
            target = top_inputs.get(bound.group(2))
            actual = target.get("type") if isinstance(target, dict) else None
            if actual and expected not in ("string", "integer", "number", "boolean") and actual != expected:
                emit(
                    key,
                    f"bound to pipeline input '{bound.group(2)}' of type {actual}; "
                    f"{contract['name']} expects {expected}",
                    rule="contract-type",
                )
        return
    if isinstance(value, dict):
        actual = value.get("type")
        if expected in ("string", "integer", "number"):
            emit(key, f"expected a {expected} value, got a mapping", rule="contract-type")
        elif actual and actual != expected:
            emit(key, f"expected type {expected}, got {actual}", rule="contract-type")
        return
    if enum:
        if isinstance(value, bool):
            text = "true" if value else "false"
            emit(
                key,
                f"YAML boolean {text} where {contract['name']} expects the string \"{text}\" (quote it: '{text}')",
                rule="string-enum",
            )
        elif not isinstance(value, str):
            emit(
                key,
                f"expected one of {', '.join(repr(e) for e in enum)} as a string, got {type(value).__name__} "
                f"{value!r} (quote it)",
                rule="string-enum",
            )
        elif value not in enum:
            close = difflib.get_close_matches(value, enum, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            emit(key, f"expected one of {', '.join(enum)}, got {value!r}{hint}", rule="string-enum")
        return
    if expected == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            emit(key, f"expected an integer, got {type(value).__name__} {value!r}", rule="contract-type")
        elif "min" in facts and value < facts["min"]:
            emit(key, f"{value} is below the minimum {facts['min']}", rule="range")
    elif expected == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = " (PyYAML reads 1e-8 as a string: write 1.0e-08)" if isinstance(value, str) and "e" in value else ""
            emit(key, f"expected a number, got {type(value).__name__} {value!r}{hint}", rule="contract-type")
    elif expected == "string":
        if not isinstance(value, str):
            emit(key, f"expected a string, got {type(value).__name__} {value!r}", rule="contract-type")
    elif expected == "boolean":
        if not isinstance(value, bool):
            emit(key, f"expected a boolean, got {type(value).__name__} {value!r}", rule="contract-type")
    elif expected in MODEL_TYPES | DATA_TYPES and isinstance(value, str) and not value.startswith(("azureml:", "${{")):
        emit(
            key,
            f"expected a {expected} input (a mapping with type/path or a binding), got {value!r}",
            rule="contract-type",
        )


def _resolve_input(value: Any, top_inputs: Any) -> Any:
    if isinstance(value, str) and isinstance(top_inputs, dict):
        bound = BINDING.fullmatch(value.strip())
        if bound and bound.group(1) == "inputs":
            target = top_inputs.get(bound.group(2))
            return target.get("path") if isinstance(target, dict) else target
    if isinstance(value, dict):
        return value.get("path")
    return value


def _check_finetune_compute(
    spec: Spec, base: tuple, inputs: dict, top_inputs: Any, emit: Emit, context: RuleContext, declared: dict
) -> None:
    model_name = _model_name_from_uri(_resolve_input(inputs.get("mlflow_model_path"), top_inputs))
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


# ----------------------------------------------------------------------------------------------- other kinds


def _check_command(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    code = data.get("code")
    if isinstance(code, str):
        _local_path(spec, ("code",), code, emit, "code folder")
    _check_scale(data, (), emit)


def _check_scale(node: dict, base: tuple, emit: Emit) -> None:
    """instance_count and process_count_per_instance are integers >= 1 (or bindings), on a job or a step."""
    resources = node.get("resources") or {}
    count = resources.get("instance_count") if isinstance(resources, dict) else None
    if count is not None and not _positive_int(count) and not _is_binding(count):
        emit((*base, "resources", "instance_count"), f"expected an integer >= 1, got {count!r}", rule="range")
    distribution = node.get("distribution") or {}
    processes = distribution.get("process_count_per_instance") if isinstance(distribution, dict) else None
    if processes is not None and not _positive_int(processes) and not _is_binding(processes):
        emit(
            (*base, "distribution", "process_count_per_instance"),
            f"expected an integer >= 1, got {processes!r}",
            rule="range",
        )


def _is_binding(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith("${{")


def _check_compute(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    name = data.get("name")
    if isinstance(name, str) and not COMPUTE_NAME.match(name):
        emit(
            ("name",),
            f"compute name {name!r} must be 2-16 characters: a letter, then letters, digits or hyphens",
            rule="name",
        )
    low, high = data.get("min_instances", 0), data.get("max_instances", 1)
    if isinstance(low, int) and isinstance(high, int) and low > high:
        emit(("min_instances",), f"min_instances {low} is greater than max_instances {high}", rule="range")
    if isinstance(high, int) and high < 1:
        emit(("max_instances",), f"max_instances must be >= 1, got {high}", rule="range")
    size = data.get("size")
    if isinstance(size, str) and sku_gpus(size) is None:
        emit(("size",), f"unknown VM size {size} (add it to schemas/catalog/skus.yaml)", WARNING, "sku")


def _asset_name(data: dict, emit: Emit, noun: str) -> None:
    """Azure asset names (data, models, environments): a letter or digit, then letters, digits, '-', '_', '.'."""
    name = data.get("name")
    if isinstance(name, str) and not ASSET_NAME.match(name):
        emit(
            ("name",),
            f"{noun} name {name!r} must start with a letter or digit and hold only letters, digits, '-', '_' and '.'",
            rule="name",
        )


def _check_asset(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    _asset_name(data, emit, "asset")
    if "version" in data and not isinstance(data["version"], str | int):
        emit(("version",), f"expected a version string, got {data['version']!r}", rule="version")
    if spec.kind == "data":
        _local_path(spec, ("path",), data.get("path"), emit, "data file")
    if spec.kind == "model" and not data.get("path"):
        emit(
            ("path",),
            "a model registration needs `path`: azureml://jobs/<job>/outputs/<output>, a datastore URI "
            "or a local folder",
            rule="required",
        )


def _endpoint_name(spec: Spec, key: tuple, emit: Emit) -> None:
    name = spec.data
    for part in key:
        name = name.get(part) if isinstance(name, dict) else None
    if isinstance(name, str) and not ENDPOINT_NAME.match(name):
        emit(
            key,
            f"{name!r} must be 3-32 characters: a letter first, then letters, digits or hyphens, "
            "not ending with a hyphen",
            rule="name",
        )


def _check_endpoint(spec: Spec, emit: Emit, context: RuleContext) -> None:
    _endpoint_name(spec, ("name",), emit)
    identity = spec.data.get("identity")
    if isinstance(identity, dict) and identity.get("type") == "user_assigned":
        items = identity.get("user_assigned_identities") or []
        if not items:
            emit(
                ("identity", "user_assigned_identities"),
                "user_assigned identity needs at least one resource_id",
                rule="identity",
            )
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            for key in sorted(set(item) - {"resource_id", "client_id", "principal_id"}):
                emit(
                    ("identity", "user_assigned_identities", index, key),
                    f"unknown key '{key}' (expected resource_id)",
                    rule="unknown-key",
                )
            rid = item.get("resource_id")
            if isinstance(rid, str) and "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" not in rid:
                emit(
                    ("identity", "user_assigned_identities", index, "resource_id"),
                    "expected /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/"
                    "userAssignedIdentities/<name>",
                    rule="identity",
                )


def _check_deployment(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    _endpoint_name(spec, ("name",), emit)
    _endpoint_name(spec, ("endpoint_name",), emit)
    count = data.get("instance_count")
    if count is not None and not _positive_int(count):
        emit(("instance_count",), f"expected an integer >= 1, got {count!r}", rule="range")
    elif context.policy == "prod" and isinstance(count, int) and count < MIN_PROD_INSTANCES:
        emit(("instance_count",), f"prod policy: at least {MIN_PROD_INSTANCES} instances, got {count}", rule="prod-ha")
    settings = data.get("request_settings") or {}
    if isinstance(settings, dict):
        timeout = settings.get("request_timeout_ms")
        if timeout is not None and (not _positive_int(timeout) or timeout > MAX_REQUEST_TIMEOUT_MS):
            emit(
                ("request_settings", "request_timeout_ms"),
                f"expected 1..{MAX_REQUEST_TIMEOUT_MS} ms, got {timeout!r}",
                rule="range",
            )
        for key in ("max_concurrent_requests_per_instance",):
            if key in settings and not _positive_int(settings[key]):
                emit(("request_settings", key), f"expected an integer >= 1, got {settings[key]!r}", rule="range")
        wait = settings.get("max_queue_wait_ms")
        if wait is not None and (isinstance(wait, bool) or not isinstance(wait, int) or wait < 0):
            emit(("request_settings", "max_queue_wait_ms"), f"expected an integer >= 0, got {wait!r}", rule="range")
    for probe in ("liveness_probe", "readiness_probe"):
        values = data.get(probe)
        if isinstance(values, dict):
            for key in PROBE_KEYS:
                if key in values and not _positive_int(values[key]):
                    emit((probe, key), f"expected an integer > 0, got {values[key]!r}", rule="range")
    model = data.get("model")
    base_model = _base_model_of(model, context)
    if isinstance(model, str) and context.policy == "prod" and not model.startswith("azureml://registries/"):
        emit(
            ("model",),
            f"prod policy: serve a registry model (azureml://registries/<registry>/models/<name>/"
            f"versions/<v>), got {model!r}; promote it with `python -m tools promote`",
            rule="prod-registry",
        )
    if base_model:
        _retired(base_model, ("model",), emit, "serving it")
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


def _base_model_of(model: Any, context: RuleContext) -> str | None:
    """The catalog model a deployment ultimately serves: directly, or via the registered model's base_model tag."""
    if not isinstance(model, str):
        return None
    direct = _model_name_from_uri(model)
    if direct in models():
        return direct
    name = direct
    if name is None:
        match = WORKSPACE_ASSET.match(model)
        name = match["name"] if match else None
    base_uri = context.registered_models.get(name or "")
    return _model_name_from_uri(base_uri)


def _check_environment(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    _asset_name(data, emit, "environment")
    conda = data.get("conda_file")
    if isinstance(conda, str):
        _local_path(spec, ("conda_file",), conda, emit, "conda file")
    elif conda is not None:
        emit(("conda_file",), f"expected the path of a conda YAML file, got {type(conda).__name__}", rule="type")
    image = data.get("image")
    if (
        isinstance(image, str)
        and context.policy == "prod"
        and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"))
    ):
        emit(("image",), f"prod policy: pin the image tag ({image})", rule="prod-pin")


_CHECKS: dict[str, Callable[[Spec, Emit, RuleContext], None]] = {
    "pipelineJob": _check_pipeline_job,
    "commandJob": _check_command,
    "commandComponent": _check_command,
    "amlCompute": _check_compute,
    "data": _check_asset,
    "model": _check_asset,
    "environment": _check_environment,
    "managedOnlineEndpoint": _check_endpoint,
    "managedOnlineDeployment": _check_deployment,
}


def relative_display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
