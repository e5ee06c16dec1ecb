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
             for that output (azure-ai-ml reads the output's `assetName`/`assetVersion` back from the service),
             through `--set model=azureml:NAME:VERSION`
  smoke      invoke the endpoint with the sample request
  teardown   delete the endpoint (destructive: needs --yes)
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.repo import active, kinds
from tools.operate import bluegreen, bootstrap, commands, evaluation, quota
from tools.operate.steps import JOB_NAME_VAR, SAMPLE_REQUEST, SAMPLE_REQUEST_HINT, Step, shell_command
from tools.operate.workspace import RenderedSpec, Workspace
from tools.render.derived import JOB_NAME_PLACEHOLDER

STAGES = ("bootstrap", "train", "register", "evaluate", "deploy", "smoke", "teardown")
# RenderedSpec kinds created in the train stage, in dependency order (an environment before the component that uses it).
TRAIN_KINDS = ("amlCompute", "environment", "commandComponent", "data")
LABELS = {"amlCompute": "compute", "environment": "environment", "commandComponent": "component", "data": "data"}
# Kinds whose `create -f` is the SDK's create-or-update (azure-ai-ml `begin_create_or_update`: compute create on an
# existing cluster updates its scale settings). Versioned assets have no update: an existing name:version is
# immutable.
CREATE_OR_UPDATE = ("amlCompute",)
JOB_CREATE = "az ml job create"
# The job submitted unless --job names another: the registry pipeline, when rendered.
DEFAULT_JOB = "finetune.yml"
FINETUNING = "finetuning"  # `type: finetuning` jobs register their `outputs.registered_model` themselves
MODEL_VERSION_VAR = "REGISTERED_MODEL_VERSION"  # the version a finetuning job's registered_model output reports


def show_of(ws: Workspace, kind: str, data: dict[str, Any]) -> tuple[str, ...] | None:
    """`az ml <noun> show` for a named (and versioned) resource."""
    name = data.get("name")
    if not name:
        return None
    version = None if data.get("version") is None else str(data["version"])
    return commands.show_named(kind, str(name), version, ws.scope())


def bootstrap_steps(ws: Workspace) -> list[Step]:
    """The registry, the workspace, its network, the endpoint identity and every role (tools.operate.bootstrap)."""
    return bootstrap.bootstrap_steps(ws)


def job_specs(ws: Workspace) -> list[RenderedSpec]:
    """Every rendered training job spec: kinds applied with `az ml job create`, and `type: finetuning` jobs (the
    evaluation job is the evaluate stage's, never trained)."""
    return [s for s in ws.specs if (kinds().get(s.kind, {}).get("az") == JOB_CREATE or s.data.get("type") == FINETUNING)
            and Path(s.path).name != evaluation.EVALUATION_JOB]  # fmt: skip


def evaluation_spec(ws: Workspace) -> RenderedSpec | None:
    found = [s for s in ws.specs if Path(s.path).name == evaluation.EVALUATION_JOB]
    return found[0] if found else None


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


def model_free_step(ws: Workspace, name: str, version: str, stage: str) -> Step:
    show = commands.model_show(name, version, ws.scope())
    return Step(f"{stage}.model-version-free", stage, show,
                f"model {name}:{version} must not exist yet (model versions are immutable)",
                action="model-free", show=show)  # fmt: skip


def _strings(data: Any) -> set[str]:
    if isinstance(data, str):
        return {data}
    if isinstance(data, dict):
        return {text for value in data.values() for text in _strings(value)}
    if isinstance(data, list):
        return {text for value in data for text in _strings(value)}
    return set()


def references(spec: RenderedSpec) -> set[str]:
    """Every string a spec holds, plus its YAML file references resolved to repo-relative paths."""
    words = _strings(spec.data)
    base = posixpath.dirname(spec.path)
    return words | {posixpath.normpath(posixpath.join(base, w)) for w in words if w.endswith((".yml", ".yaml"))}


def uses(words: set[str], spec: RenderedSpec) -> bool:
    """Whether ``words`` name ``spec``: a cluster by NAME or azureml:NAME, a versioned asset by azureml:NAME:VERSION
    (or @latest), a component by its file too."""
    name = str(spec.data.get("name"))
    if spec.kind == "amlCompute":
        return bool({name, f"azureml:{name}"} & words)
    forms = {f"azureml:{name}:{spec.data.get('version')}", f"azureml:{name}@latest", spec.path}
    return bool(forms & words)


def needed_specs(ws: Workspace, job: RenderedSpec, all_data: bool = True) -> tuple[list[RenderedSpec],
                                                                                  list[RenderedSpec]]:
    """(needed, not needed) among the specs the train stage ensures: the clusters, components and environments the
    job names (a component's own references count: its environment), and every data asset with ``all_data`` (the
    workspace's registered datasets: cheap, and what prod jobs and the evaluation read), else those it names."""
    words = references(job)
    for component in ws.of_kind("commandComponent"):
        if uses(words, component):
            words |= references(component)
    needed, skipped = [], []
    for kind in TRAIN_KINDS:
        for spec in ws.of_kind(kind):
            (needed if (kind == "data" and all_data) or uses(words, spec) else skipped).append(spec)
    return needed, skipped


def ensure_steps(ws: Workspace, stage: str, needed: list[RenderedSpec]) -> list[Step]:
    """Show, then create what is missing / update what differs / leave what is equal, in dependency order."""
    steps: list[Step] = []
    for kind in TRAIN_KINDS:
        for spec in [s for s in needed if s.kind == kind]:
            name = spec.data.get("name", Path(spec.path).stem)
            label = f"{LABELS[kind]} {name}" + (f":{spec.data['version']}" if "version" in spec.data else "")
            create = commands.create_from_file(kind, spec.path, ws.scope())
            updatable = kind in CREATE_OR_UPDATE
            notes: tuple[str, ...] = ()
            if kind == "amlCompute":
                notes = (quota.compute_need(spec.data).line(),)
            steps.append(Step(
                f"{stage}.{LABELS[kind]}-{name}", stage, create,
                f"{label}: create when missing, " + ("update when it differs" if updatable else
                                                     "leave an existing version as it is (immutable)"),
                action="ensure", show=show_of(ws, kind, spec.data), update=create if updatable else None,
                spec=spec.path, kind=kind, data=spec.data, notes=notes,
            ))  # fmt: skip
    return steps


def train_steps(ws: Workspace, job: str | None = None) -> list[Step]:
    spec = job_spec(ws, job)
    needed, skipped = needed_specs(ws, spec)
    steps = ensure_steps(ws, "train", needed)
    model_name, model_version = registered_model(ws, spec)
    if model_version is not None:  # a finetuning job without a version: the service registers the next free one
        steps.append(model_free_step(ws, model_name, model_version, "train"))
    create = kinds()[spec.kind]["az"].split() if spec.kind in kinds() else JOB_CREATE.split()
    submit = commands.job_create(create, spec.path, ws.scope())
    job_name = "${" + JOB_NAME_VAR + "}"
    registers = ""
    if is_finetuning(spec):
        registers = (f" (the service registers its outputs.registered_model as {model_name}:"
                     f"{model_version or 'its next version'}: no register step)")  # fmt: skip
    names = ", ".join(f"{LABELS[s.kind]} {s.data.get('name')}" for s in skipped)
    unused = (f"not needed by {spec.path}, so not created: {names}",) if skipped else ()
    steps += [
        Step("train.job-submit", "train", submit, f"submit {spec.path}{registers}", captures=JOB_NAME_VAR,
             spec=spec.path, kind=spec.kind, data=spec.data, notes=unused),
        Step("train.job-stream", "train", commands.job_stream(job_name, ws.scope()),
             "follow the job's logs until it ends", action="follow"),
        Step("train.job-status", "train", commands.job_query(job_name, "status", ws.scope()),
             "wait for a terminal state: the job must have Completed (Failed or Canceled stop here)",
             action="job-wait", captures="JOB_STATUS", expect="Completed",
             on_failure=(commands.job_download_all(job_name, ws.scope()),)),
    ]  # fmt: skip
    return steps


def register_steps(ws: Workspace, job: str | None = None) -> list[Step]:
    """`-f` the validated model spec and override only its `path` with the submitted job's output: the job name is
    the one value not known at render time (its spec carries the placeholder JOB_NAME)."""
    if is_finetuning(chosen_job(ws, job)):
        return []  # the finetuning job registered its output itself
    steps = []
    for spec in ws.of_kind("model"):
        model_path = str(spec.data.get("path", ""))
        if f"/{JOB_NAME_PLACEHOLDER}/" not in model_path:
            continue  # a model spec not fed by the job
        name, version = str(spec.data.get("name")), str(spec.data.get("version"))
        output = model_path.replace(f"/{JOB_NAME_PLACEHOLDER}/", "/${" + JOB_NAME_VAR + "}/")
        argv = commands.model_create(spec.path, output, ws.scope())
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


def chosen_job(ws: Workspace, job: str | None) -> RenderedSpec | None:
    """The job a plan submits (None when the render has no job spec)."""
    return job_spec(ws, job) if job_specs(ws) else None


def finetuned_model_steps(ws: Workspace, job: RenderedSpec, stage: str = "deploy") -> tuple[list[Step],
                                                                                            tuple[str, ...]]:
    """After a `type: finetuning` job: the version of the model it registered (a capture from `az ml job show`,
    unless the spec sets it) and the `--set` that points the deployment at that model."""
    name, version = registered_model(ws, job)
    steps: list[Step] = []
    if version is None:
        show = commands.job_query("${" + JOB_NAME_VAR + "}", "outputs.registered_model.version", ws.scope())
        listing = commands.model_list_table(name, ws.scope())
        steps.append(Step(f"{stage}.registered-model-version", stage, show,
                          f"the version of {name} that {job.path} registered (its outputs.registered_model)",
                          captures=MODEL_VERSION_VAR, on_failure=(listing,)))  # fmt: skip
        version = "${" + MODEL_VERSION_VAR + "}"
    return steps, (f"model=azureml:{name}:{version}",)


def evaluate_steps(ws: Workspace, job: str | None = None) -> list[Step]:
    """Candidate (the version this run registered) against champion on the gate set (``tools.operate.evaluation``):
    ensure what the evaluation job uses, submit it, wait for Completed, download its report, read the verdict,
    record it as tags on the version, and stop unless it is pass."""
    spec = evaluation_spec(ws)
    source = chosen_job(ws, job)
    if spec is None or source is None:
        return []
    scope = ws.scope()
    name, version = registered_model(ws, source)
    steps = ensure_steps(ws, "evaluate", needed_specs(ws, spec, all_data=False)[0])
    sets: tuple[str, ...] = ()
    if version is None:  # a finetuning job registered the next free version: evaluate that one
        version_steps, _ = finetuned_model_steps(ws, source, "evaluate")
        steps += version_steps
        version = "${" + MODEL_VERSION_VAR + "}"
        sets = commands.set_words((f"inputs.candidate_model.path=azureml:{name}:{version}",
                                   f"jobs.evaluate.inputs.candidate_id={name}:{version}"))  # fmt: skip
    job_name = "${" + evaluation.JOB_VAR + "}"
    download = f"{active().relative(active().runs_dir)}/evaluate/{job_name}"
    create = kinds()[spec.kind]["az"].split() if spec.kind in kinds() else JOB_CREATE.split()
    verdict = "${" + evaluation.VERDICT_VAR + "}"
    tags = evaluation.verdict_tags(verdict, "${" + evaluation.CHAMPION_VAR + "}", "${" + evaluation.GATE_VAR + "}",
                                   job_name)  # fmt: skip
    report = f"{evaluation.report_folder(download)}/report.json"
    read = f"read -r {evaluation.VERDICT_VAR} {evaluation.CHAMPION_VAR} {evaluation.GATE_VAR} < <(python -c " + \
        shell_command([evaluation.READ_REPORT, report]) + ")"
    candidate = f"{name}:{version}"
    steps += [
        Step("evaluate.job-submit", "evaluate", commands.job_create(create, spec.path, scope, sets),
             f"submit {spec.path}: {candidate} against the champion on the gate set", captures=evaluation.JOB_VAR,
             spec=spec.path, kind=spec.kind, data=spec.data),
        Step("evaluate.job-stream", "evaluate", commands.job_stream(job_name, scope),
             "follow the evaluation's logs until it ends", action="follow"),
        Step("evaluate.job-status", "evaluate", commands.job_query(job_name, "status", scope),
             "the evaluation must have Completed", action="job-wait", captures=evaluation.STATUS_VAR,
             expect="Completed", on_failure=(commands.job_download_all(job_name, scope),)),
        Step("evaluate.report-download", "evaluate",
             commands.job_download_output(job_name, evaluation.REPORT_OUTPUT, download, scope),
             f"download its report into {download}"),
        Step("evaluate.verdict", "evaluate", (), "read the verdict, the champion and the gate set's sha256",
             action="verdict", captures=evaluation.VERDICT_VAR,
             captures_more=(evaluation.CHAMPION_VAR, evaluation.GATE_VAR), script=read, data={"download": download}),
        Step("evaluate.record", "evaluate", commands.model_set(name, version, tags, scope),
             f"record the verdict on {candidate} as tags ({', '.join(k.split('.', 1)[1] for k in tags)})"),
        Step("evaluate.gate", "evaluate", ("test", verdict, "=", evaluation.PASS),
             f"{candidate} serves only with {evaluation.VERDICT_TAG}={evaluation.PASS}", action="gate",
             data={"candidate": candidate}),
    ]  # fmt: skip
    return steps


def deploy_steps(ws: Workspace, job: str | None = None) -> list[Step]:
    endpoint = endpoint_spec(ws)
    name = str(endpoint.data["name"])
    create = commands.create_from_file("managedOnlineEndpoint", endpoint.path, ws.scope())
    update = commands.endpoint_update_file(endpoint.path, ws.scope())
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
    for spec in ws.of_kind("managedOnlineDeployment"):
        deployment = str(spec.data.get("name"))
        on = str(spec.data.get("endpoint_name", name))
        model = sets[0].split("=", 1)[1] if sets else spec.data.get("model")
        target = bluegreen.RolloutTarget(
            spec_path=spec.path, spec_name=deployment, endpoint=on, scope=tuple(ws.scope()),
            sets=commands.set_words(sets), rollout=ws.rollout, request_file=SAMPLE_REQUEST, workspace=ws.values_name,
        )  # fmt: skip
        steps.append(Step(f"deploy.deployment-{deployment}", "deploy", bluegreen.first_deployment(target, deployment),
                          f"deployment of {model} on {on}", action="rollout",
                          show=commands.deployment_show(deployment, on, ws.scope()), spec=spec.path,
                          kind="managedOnlineDeployment", data=spec.data,
                          notes=(quota.deployment_need(deployment, spec.data).line(),), sets=sets,
                          script=bluegreen.script(target),
                          on_failure=commands.deployment_logs(deployment, on, ws.scope())))  # fmt: skip
    return steps


def smoke_steps(ws: Workspace) -> list[Step]:
    name = str(endpoint_spec(ws).data["name"])
    return [Step("smoke.invoke", "smoke", commands.endpoint_invoke(name, SAMPLE_REQUEST, ws.scope()),
                 f"score the sample request (written by `{SAMPLE_REQUEST_HINT}`)", needs_files=(SAMPLE_REQUEST,))]


def teardown_steps(ws: Workspace) -> list[Step]:
    name = str(endpoint_spec(ws).data["name"])
    return [Step("teardown.endpoint-delete", "teardown", commands.endpoint_delete(name, ws.scope()),
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
        "evaluate": lambda w: evaluate_steps(w, job),
        "deploy": lambda w: deploy_steps(w, job),
        "smoke": smoke_steps,
        "teardown": teardown_steps,
    }
    steps = [step for stage in stages for step in builders[stage](ws)]
    ensured = [s.spec for s in steps if s.action == "ensure"]
    # a resource two stages need (the cluster of training and evaluation) is ensured once, by the first
    return [s for i, s in enumerate(steps) if s.action != "ensure" or s.spec not in ensured[: _nth_ensure(steps, i)]]


def _nth_ensure(steps: list[Step], index: int) -> int:
    return sum(1 for s in steps[:index] if s.action == "ensure")
