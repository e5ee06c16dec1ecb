"""Stage builders: pure functions from a ``Workspace`` (its rendered, validated specs) to the ``Step`` values of one
stage. Which specs exist is read from the render, never from a list in code; the `az ml` words of a kind come from
`schemas/kinds.yaml` (one source).

  bootstrap  user-assigned identity + role assignments (needs Owner / User Access Administrator)
  train      compute, environments, components, data (each: show, then create / update / leave as it is), the
             guard that the model version the run will register is still free, submit, follow, check Completed
  register   the job's output as the model version of the values (a `type: finetuning` job registers its own
             `outputs.registered_model`: no step)
  deploy     the endpoint (show, create or update), then the deployment: all traffic at once on a new endpoint,
             blue/green beside a live deployment (``tools.operate.rollout``; printed as a shell branch by
             ``tools.operate.bluegreen``). After a `type: finetuning` job it deploys the model the job registered:
             `outputs.registered_model.name`, the version the spec sets or else the one `az ml job show` reports
             for that output (azureml-operations.md "Fine-tuning jobs"; azure-ai-ml reads the output's
             `assetName`/`assetVersion` back from the service), through `--set model=azureml:NAME:VERSION`
  smoke      invoke the endpoint with the sample request
  teardown   delete the endpoint (destructive: needs --yes)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.repo import kinds
from tools.operate import bluegreen, quota
from tools.operate.steps import JOB_NAME_VAR, SAMPLE_REQUEST, SAMPLE_REQUEST_HINT, Step
from tools.operate.workspace import RenderedSpec, Workspace

STAGES = ("bootstrap", "train", "register", "deploy", "smoke", "teardown")
# Role assignments of the endpoint identity: (role, scope variable or literal, why).
ROLE_ASSIGNMENTS: tuple[tuple[str, str, str], ...] = (
    ("Contributor", "resource-group", "manage the endpoint's resources in the resource group"),
    ("Storage Blob Data Reader", "${STORAGE_ID}", "read the model files from the workspace storage account"),
    ("AcrPull", "${ACR_ID}", "pull the serving image from the workspace container registry"),
)
# RenderedSpec kinds created in the train stage, in dependency order (an environment before the component that uses it).
TRAIN_KINDS = ("amlCompute", "environment", "commandComponent", "data")
LABELS = {"amlCompute": "compute", "environment": "environment", "commandComponent": "component", "data": "data"}
# Kinds whose `create -f` is the SDK's create-or-update (azureml-operations.md: compute create on an existing
# cluster updates its scale settings). Versioned assets have no update: an existing name:version is immutable.
CREATE_OR_UPDATE = ("amlCompute",)
JOB_CREATE = "az ml job create"
# The job submitted unless --job names another: the registry pipeline, when rendered.
DEFAULT_JOB = "finetune.yml"
FINETUNING = "finetuning"  # `type: finetuning` jobs register their `outputs.registered_model` themselves
MODEL_VERSION_VAR = "REGISTERED_MODEL_VERSION"  # the version a finetuning job's registered_model output reports


def az_create(kind: str) -> list[str]:
    """The `az ml ... create` words for a spec kind."""
    return kinds()[kind]["az"].split()


def az_noun(kind: str) -> list[str]:
    return az_create(kind)[:-1]  # "az ml compute create" -> ["az", "ml", "compute"]


def show_of(ws: Workspace, kind: str, data: dict[str, Any]) -> tuple[str, ...] | None:
    """`az ml <noun> show` for a named (and versioned) resource."""
    name = data.get("name")
    if not name:
        return None
    argv = [*az_noun(kind), "show", "--name", str(name)]
    if data.get("version") is not None:
        argv += ["--version", str(data["version"])]
    return (*argv, *ws.scope())


def bootstrap_steps(ws: Workspace) -> list[Step]:
    sub = ["--subscription", ws.subscription]
    rg_scope = f"/subscriptions/{ws.subscription}/resourceGroups/{ws.resource_group}"
    location = ["--location", ws.location] if ws.location else []
    identity = ("az", "identity", "create", "--name", ws.identity, "-g", ws.resource_group, *location, *sub,
                "--query", "principalId", "-o", "tsv")  # fmt: skip
    steps = [
        Step("bootstrap.identity", "bootstrap", identity,
             f"user-assigned managed identity {ws.identity} for the endpoint (create or reuse)",
             captures="PRINCIPAL_ID"),
    ]  # fmt: skip
    for var, field_name in (("STORAGE_ID", "storage_account"), ("ACR_ID", "container_registry")):
        argv = ("az", "ml", "workspace", "show", "--name", ws.ml_workspace, "-g", ws.resource_group, *sub,
                "--query", field_name, "-o", "tsv")  # fmt: skip
        steps.append(Step(f"bootstrap.{field_name.replace('_', '-')}", "bootstrap", argv,
                          f"resource id of the workspace {field_name.replace('_', ' ')}", captures=var))  # fmt: skip
    for role, scope, why in ROLE_ASSIGNMENTS:
        argv = ("az", "role", "assignment", "create", "--assignee-object-id", "${PRINCIPAL_ID}",
                "--assignee-principal-type", "ServicePrincipal", "--role", role,
                "--scope", rg_scope if scope == "resource-group" else scope, *sub)  # fmt: skip
        steps.append(Step(f"bootstrap.role-{role.lower().replace(' ', '-')}", "bootstrap", argv,
                          f"{role} for {ws.identity}: {why}"))  # fmt: skip
    return steps


def job_specs(ws: Workspace) -> list[RenderedSpec]:
    """Every rendered job spec: kinds applied with `az ml job create`, and `type: finetuning` jobs."""
    return [s for s in ws.specs if kinds().get(s.kind, {}).get("az") == JOB_CREATE or s.data.get("type") == FINETUNING]


def job_spec(ws: Workspace, job: str | None) -> RenderedSpec:
    jobs = job_specs(ws)
    if not jobs:
        raise UserError(f"{ws.values_name}: the render has no job spec to submit")
    if job is None:
        preferred = [spec for spec in jobs if Path(spec.path).name == DEFAULT_JOB]
        return (preferred or jobs)[0]
    wanted = os.path.normpath(job)
    for spec in jobs:
        if wanted in (os.path.normpath(spec.path), os.path.normpath(os.path.relpath(spec.path, ws.out_dir))):
            return spec
    raise UserError(
        f"--job {job}: not a rendered job spec of {ws.values_name} (one of: {', '.join(s.path for s in jobs)})"
    )


def is_finetuning(spec: RenderedSpec | None) -> bool:
    return spec is not None and spec.data.get("type") == FINETUNING


def registered_model(ws: Workspace, job: RenderedSpec) -> tuple[str, str | None]:
    """The model name and version the run ends in: a finetuning job's `outputs.registered_model` (version None when
    the spec leaves it to the service, which registers the next free one), else the workspace's `registered_model`
    (what the register stage creates)."""
    values = ws.values.get("registered_model", {})
    if is_finetuning(job):
        output = (job.data.get("outputs") or {}).get("registered_model") or {}
        version = output.get("version")
        return str(output.get("name") or values.get("name")), None if version in (None, "") else str(version)
    return str(values.get("name")), str(values.get("version"))


def job_logs_command(ws: Workspace) -> tuple[str, ...]:
    """What a failed or canceled job left: its logs and outputs (`az ml job download --all`)."""
    return ("az", "ml", "job", "download", "--name", "${JOB_NAME}", "--all", "--download-path", "job-logs/${JOB_NAME}",
            *ws.scope())  # fmt: skip


def model_free_step(ws: Workspace, name: str, version: str, stage: str) -> Step:
    show = ("az", "ml", "model", "show", "--name", name, "--version", version, *ws.scope())
    return Step(f"{stage}.model-version-free", stage, show,
                f"model {name}:{version} must not exist yet (model versions are immutable)",
                action="model-free", show=show)  # fmt: skip


def train_steps(ws: Workspace, job: str | None = None) -> list[Step]:
    steps: list[Step] = []
    for kind in TRAIN_KINDS:
        for spec in ws.of_kind(kind):
            name = spec.data.get("name", Path(spec.path).stem)
            label = f"{LABELS[kind]} {name}" + (f":{spec.data['version']}" if "version" in spec.data else "")
            create = (*az_create(kind), "-f", spec.path, *ws.scope())
            updatable = kind in CREATE_OR_UPDATE
            notes: tuple[str, ...] = ()
            if kind == "amlCompute":
                notes = (quota.compute_need(spec.data).line(),)
            steps.append(Step(
                f"train.{LABELS[kind]}-{name}", "train", create,
                f"{label}: create when missing, " + ("update when it differs" if updatable else
                                                     "leave an existing version as it is (immutable)"),
                action="ensure", show=show_of(ws, kind, spec.data), update=create if updatable else None,
                spec=spec.path, kind=kind, data=spec.data, notes=notes,
            ))  # fmt: skip
    spec = job_spec(ws, job)
    model_name, model_version = registered_model(ws, spec)
    if model_version is not None:  # a finetuning job without a version: the service registers the next free one
        steps.append(model_free_step(ws, model_name, model_version, "train"))
    create = az_create(spec.kind) if spec.kind in kinds() else JOB_CREATE.split()
    submit = (*create, "-f", spec.path, *ws.scope(), "--query", "name", "-o", "tsv")
    registers = ""
    if is_finetuning(spec):
        registers = (f" (the service registers its outputs.registered_model as {model_name}:"
                     f"{model_version or 'its next version'}: no register step)")  # fmt: skip
    steps += [
        Step("train.job-submit", "train", submit, f"submit {spec.path}{registers}", captures=JOB_NAME_VAR,
             spec=spec.path, kind=spec.kind, data=spec.data),
        Step("train.job-stream", "train", ("az", "ml", "job", "stream", "--name", "${JOB_NAME}", *ws.scope()),
             "follow the job's logs until it ends", action="follow"),
        Step("train.job-status", "train",
             ("az", "ml", "job", "show", "--name", "${JOB_NAME}", *ws.scope(), "--query", "status", "-o", "tsv"),
             "wait for a terminal state: the job must have Completed (Failed or Canceled stop here)",
             action="job-wait", captures="JOB_STATUS", expect="Completed", on_failure=(job_logs_command(ws),)),
    ]  # fmt: skip
    return steps


def register_steps(ws: Workspace, job: str | None = None) -> list[Step]:
    """`-f` the validated model spec and override only its `path` with the submitted job's output: the job name is
    the one value not known at render time (its spec carries the placeholder JOB_NAME)."""
    from tools.render.derived import JOB_NAME_PLACEHOLDER

    if is_finetuning(chosen_job(ws, job)):
        return []  # the finetuning job registered its output itself
    steps = []
    for spec in ws.of_kind("model"):
        model_path = str(spec.data.get("path", ""))
        if f"/{JOB_NAME_PLACEHOLDER}/" not in model_path:
            continue  # a model spec not fed by the job
        name, version = str(spec.data.get("name")), str(spec.data.get("version"))
        argv = ("az", "ml", "model", "create", "-f", spec.path,
                "--path", model_path.replace(f"/{JOB_NAME_PLACEHOLDER}/", "/${JOB_NAME}/"), *ws.scope())  # fmt: skip
        steps.append(Step(f"register.model-{name}", "register", argv,
                          f"register {name}:{version} from the job's output", action="register",
                          show=show_of(ws, "model", spec.data), spec=spec.path, kind="model",
                          data=spec.data))  # fmt: skip
    return steps


def endpoint_spec(ws: Workspace) -> RenderedSpec:
    endpoints = ws.of_kind("managedOnlineEndpoint")
    if not endpoints:
        raise UserError(f"{ws.values_name}: the render has no online endpoint spec")
    return endpoints[0]


def get_logs_commands(ws: Workspace, deployment: str, endpoint: str) -> tuple[tuple[str, ...], ...]:
    """The one source of the `get-logs` commands: inference server and storage initializer (model download)."""
    base = ("az", "ml", "online-deployment", "get-logs", "--name", deployment, "--endpoint-name", endpoint)
    return (
        (*base, *ws.scope(), "--container", "inference-server", "--lines", "200"),
        (*base, *ws.scope(), "--container", "storage-initializer", "--lines", "200"),
    )


def chosen_job(ws: Workspace, job: str | None) -> RenderedSpec | None:
    """The job a plan submits (None when the render has no job spec)."""
    return job_spec(ws, job) if job_specs(ws) else None


def finetuned_model_steps(ws: Workspace, job: RenderedSpec) -> tuple[list[Step], tuple[str, ...]]:
    """After a `type: finetuning` job: the version of the model it registered (a capture from `az ml job show`,
    unless the spec sets it) and the `--set` that points the deployment at that model."""
    name, version = registered_model(ws, job)
    steps: list[Step] = []
    if version is None:
        show = ("az", "ml", "job", "show", "--name", "${JOB_NAME}", *ws.scope(), "--query",
                "outputs.registered_model.version", "-o", "tsv")  # fmt: skip
        listing = ("az", "ml", "model", "list", "--name", name, *ws.scope(), "-o", "table")
        steps.append(Step("deploy.registered-model-version", "deploy", show,
                          f"the version of {name} that {job.path} registered (its outputs.registered_model)",
                          captures=MODEL_VERSION_VAR, on_failure=(listing,)))  # fmt: skip
        version = "${" + MODEL_VERSION_VAR + "}"
    return steps, (f"model=azureml:{name}:{version}",)


def deploy_steps(ws: Workspace, job: str | None = None) -> list[Step]:
    endpoint = endpoint_spec(ws)
    name = str(endpoint.data["name"])
    create = (*az_create("managedOnlineEndpoint"), "-f", endpoint.path, *ws.scope())
    update = ("az", "ml", "online-endpoint", "update", "-f", endpoint.path, *ws.scope())
    steps = [
        Step(f"deploy.endpoint-{name}", "deploy", create,
             f"endpoint {name}: create when missing, update when it differs", action="ensure",
             show=show_of(ws, "managedOnlineEndpoint", endpoint.data), update=update, spec=endpoint.path,
             kind="managedOnlineEndpoint", data=endpoint.data),
    ]  # fmt: skip
    sets: tuple[str, ...] = ()
    source = chosen_job(ws, job)
    if is_finetuning(source):
        assert source is not None
        version_steps, sets = finetuned_model_steps(ws, source)
        steps += version_steps
    set_words = tuple(word for pair in sets for word in ("--set", pair))
    for spec in ws.of_kind("managedOnlineDeployment"):
        deployment = str(spec.data.get("name"))
        on = str(spec.data.get("endpoint_name", name))
        first = (*az_create("managedOnlineDeployment"), "-f", spec.path, *ws.scope(), "--all-traffic", *set_words)
        show = ("az", "ml", "online-deployment", "show", "--name", deployment, "--endpoint-name", on, *ws.scope())
        model = sets[0].split("=", 1)[1] if sets else spec.data.get("model")
        plan = bluegreen.Plan(
            spec_path=spec.path, spec_name=deployment, endpoint=on, scope=tuple(ws.scope()), sets=set_words,
            rollout=ws.rollout, request_file=SAMPLE_REQUEST,
        )  # fmt: skip
        steps.append(Step(f"deploy.deployment-{deployment}", "deploy", first, f"deployment of {model} on {on}",
                          action="rollout", show=show, spec=spec.path, kind="managedOnlineDeployment", data=spec.data,
                          notes=(quota.deployment_need(deployment, spec.data).line(),), sets=sets,
                          script=bluegreen.script(plan), on_failure=get_logs_commands(ws, deployment, on)))  # fmt: skip
    return steps


def invoke_argv(ws: Workspace, endpoint: str, deployment: str | None = None) -> tuple[str, ...]:
    target = ("--deployment-name", deployment) if deployment else ()
    return ("az", "ml", "online-endpoint", "invoke", "--name", endpoint, *target, "--request-file", SAMPLE_REQUEST,
            *ws.scope())  # fmt: skip


def smoke_steps(ws: Workspace) -> list[Step]:
    name = str(endpoint_spec(ws).data["name"])
    return [Step("smoke.invoke", "smoke", invoke_argv(ws, name),
                 f"score the sample request (written by `{SAMPLE_REQUEST_HINT}`)", needs_files=(SAMPLE_REQUEST,))]


def teardown_steps(ws: Workspace) -> list[Step]:
    name = str(endpoint_spec(ws).data["name"])
    return [Step("teardown.endpoint-delete", "teardown",
                 ("az", "ml", "online-endpoint", "delete", "--name", name, *ws.scope(), "--yes"),
                 f"delete endpoint {name} and its deployments (endpoints bill while they exist)", destructive=True)]


def parse_stages(text: str) -> list[str]:
    """`all`, one stage, or a comma-separated list; returned in plan order."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return list(STAGES)
    unknown = [w for w in words if w not in STAGES]
    if unknown or not words:
        raise UserError(f"--stage {text}: expected all or a comma-separated list of {', '.join(STAGES)}")
    return [stage for stage in STAGES if stage in words]


def build_plan(ws: Workspace, stages: list[str], job: str | None = None) -> list[Step]:
    """The ordered steps of the chosen stages (pure)."""
    builders = {
        "bootstrap": bootstrap_steps,
        "train": lambda w: train_steps(w, job),
        "register": lambda w: register_steps(w, job),
        "deploy": lambda w: deploy_steps(w, job),
        "smoke": smoke_steps,
        "teardown": teardown_steps,
    }
    return [step for stage in stages for step in builders[stage](ws)]
