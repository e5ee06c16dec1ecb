"""Azure's naming rules, and the clusters that jobs name.

* Online endpoint and deployment names: 3-32 characters, a letter first, then letters, digits or hyphens, not ending
  with a hyphen (azure-ai-ml ``validate_endpoint_or_deployment_name``; ``EndpointConfigurations.NAME_REGEX_PATTERN``).
* Compute (cluster) names: Azure's pages disagree, so only what neither allows is an error: the ARM naming rules
  give 2-16 alphanumerics and hyphens (learn.microsoft.com/azure/azure-resource-manager/management/resource-name-
  rules, Microsoft.MachineLearningServices ``workspaces / computes``), the compute-cluster how-to gives 3-24, a letter
  first, letters, digits and '-', a '-' followed by a letter somewhere later (how-to-create-attach-compute-cluster,
  "Compute name"). We accept 2-24 characters, a letter first, letters, digits and hyphens.
* Asset names (data, models, environments, feature sets and entities): a letter or digit, then letters, digits,
  '-', '_', '.', at most 255.
* Job and schedule names: a letter or digit, then letters, digits, '-' or '_', at most 255 (Azure ML's run id
  rule, reference-yaml-job-command "name"; the service refuses others at submission).
* Component names: a lower-case letter, then lower-case letters, digits or '_' (azure-ai-ml ``ComponentNameStr``,
  ``PythonFuncNameStr._deserialize``: ``^[a-z][a-z\\d_]*$``; ``az ml component create`` refuses others).
* Datastore names: letters, digits and underscores (reference-yaml-datastore-blob "name": "Name of the datastore").
* Workspace, registry and feature store names: 3-33 characters, a letter or digit first, then letters, digits, '-'
  or '_' (ARM naming rules for Microsoft.MachineLearningServices workspaces and registries; a feature store is a
  workspace of kind FeatureStore).
* Feature sets and feature store entities are versioned assets of a feature store: the asset rule above.
* Batch and Kubernetes endpoint and deployment names follow the online endpoint rule above (the SDK's
  ``EndpointConfigurations.NAME_REGEX_PATTERN`` covers every endpoint and deployment).
* The cluster a job, a pipeline step (``compute:``) or a registry component input (``compute_finetune`` and the
  other ``compute_*``) names resolves when the run knows clusters. In a rendered workspace (``RuleContext.workspace``)
  its values declare every cluster, so another name is an error (Azure fails the submission, "compute not found").
  Elsewhere only the amlCompute specs of the spec's own project count (not those of unrelated projects validated
  alongside), and an unknown name is a warning: a team's cluster is often created outside YAML.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from tools.validate.document import Spec
from tools.validate.expressions import OPEN
from tools.validate.findings import WARNING
from tools.validate.rules._walk import get_path, walk
from tools.validate.rules.support import Emit, RuleContext

ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
COMPUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,23}$")
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
ASSET_KINDS = {"data": "asset", "model": "asset", "environment": "environment", "dataImport": "asset",
               "featureSet": "feature set", "featureStoreEntity": "feature store entity"}
COMPUTE_KINDS = ("amlCompute", "computeInstance")
NAMED_COMPUTE_KINDS = (*COMPUTE_KINDS, "vmCompute", "kubernetesCompute")
ENDPOINT_KINDS = ("managedOnlineEndpoint", "kubernetesOnlineEndpoint", "batchEndpoint")
DEPLOYMENT_KINDS = ("managedOnlineDeployment", "kubernetesOnlineDeployment", "batchDeployment",
                    "modelBatchDeployment", "pipelineComponentBatchDeployment")
JOB_NAME = (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$"),
            "must start with a letter or digit and hold only letters, digits, '-' and '_' (at most 255 characters)")
OTHER_NAMES: dict[tuple[str, ...], tuple[re.Pattern[str], str]] = {
    ("pipelineJob", "commandJob", "sweepJob", "sparkJob", "autoMLJob", "finetuningJob", "distillationJob",
     "schedule"): JOB_NAME,
    ("commandComponent", "pipelineComponent", "sparkComponent", "parallelComponent", "automlComponent"):
        (re.compile(r"^[a-z][a-z0-9_]*$"), "must be a lower-case letter, then lower-case letters, digits or '_'"),
    ("azureBlob", "azureFile", "azureDataLakeGen1", "azureDataLakeGen2"):
        (re.compile(r"^[A-Za-z0-9_]{1,255}$"), "must hold only letters, digits and '_'"),
    ("workspace", "registry", "featureStore"): (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$"),
                                "must be 3-33 characters: a letter or digit, then letters, digits, '-' or '_'"),
}
NOT_A_CLUSTER = ("serverless", "local")  # compute values that name no cluster
ARM_COMPUTE = re.compile(r"/computes/(?P<name>[^/]+)$", re.IGNORECASE)


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    for kinds, (pattern, rule) in OTHER_NAMES.items():
        name = data.get("name")
        if spec.kind in kinds and isinstance(name, str) and OPEN not in name and not pattern.match(name):
            emit(("name",), f"name {name!r} {rule}", rule="name")
    if spec.kind == "modelPackage" and isinstance(data.get("target_environment"), str):
        asset_name({"name": data["target_environment"]}, emit, "environment", ("target_environment",))
    if spec.kind in NAMED_COMPUTE_KINDS:
        name = data.get("name")
        if isinstance(name, str) and not COMPUTE_NAME.match(name):
            emit(
                ("name",),
                f"compute name {name!r} must be 2-24 characters: a letter, then letters, digits or hyphens",
                rule="name",
            )
    elif spec.kind in ASSET_KINDS:
        asset_name(data, emit, ASSET_KINDS[spec.kind])
    elif spec.kind in ENDPOINT_KINDS:
        endpoint_name(spec, ("name",), emit)
    elif spec.kind in DEPLOYMENT_KINDS:
        endpoint_name(spec, ("name",), emit)
        endpoint_name(spec, ("endpoint_name",), emit)
    known = known_clusters(context, spec)
    if known and spec.kind not in COMPUTE_KINDS:
        for key_path, value in compute_references(data):
            _resolve_cluster(key_path, value, known, emit, context.workspace)


def asset_name(data: dict, emit: Emit, noun: str, key: tuple = ("name",)) -> None:
    """Azure asset names (data, models, environments): a letter or digit, then letters, digits, '-', '_', '.'."""
    name = data.get("name")
    if isinstance(name, str) and not ASSET_NAME.match(name):
        emit(
            key,
            f"{noun} name {name!r} must start with a letter or digit and hold only letters, digits, '-', '_' and '.' "
            "(at most 255 characters)",
            rule="name",
        )


def endpoint_name(spec: Spec, key: tuple, emit: Emit) -> None:
    name = get_path(spec.data, key)
    if isinstance(name, str) and not ENDPOINT_NAME.match(name):
        emit(
            key,
            f"{name!r} must be 3-32 characters: a letter first, then letters, digits or hyphens, "
            "not ending with a hyphen",
            rule="name",
        )


def known_clusters(context: RuleContext, spec: Spec) -> dict[str, str]:
    """Cluster name -> VM size that ``spec`` may name: in a rendered workspace every compute spec of it; elsewhere
    only those of the spec's own project (a compute spec whose project folder holds the spec), so the clusters of
    unrelated projects validated together say nothing about this one."""
    if context.workspace is not None or not context.computes:
        return dict(context.computes)
    folder = spec.path.resolve().parent
    above = {folder, *folder.parents}
    return {name: size for name, size in context.computes.items()
            if any(home.resolve() in above for home in context.compute_homes.get(name, ()))}


def compute_references(data: Any) -> list[tuple[tuple, str]]:
    """Every string that names a cluster: ``compute`` (a job, a step, ``settings.default_compute``) and the
    ``compute_*`` inputs of a step or pipeline, with their key paths (values that are expressions are left out)."""
    found = []
    for key_path, value in walk(data):
        if not isinstance(value, str) or OPEN in value or not key_path:
            continue
        key = key_path[-1] if key_path[-1] not in ("default", "value") or len(key_path) < 2 else key_path[-2]
        if not isinstance(key, str):
            continue
        if key in ("compute", "default_compute") or (key.startswith("compute_") and _in_inputs(key_path)):
            found.append((key_path, value))
    return found


def _in_inputs(key_path: tuple) -> bool:
    return "inputs" in key_path[:-1]


def cluster_name(value: str) -> str | None:
    """The cluster a compute value names (``azureml:gpu``, ``gpu``, an ARM id), or None (serverless, local)."""
    name = value.strip().removeprefix("azureml:")
    arm = ARM_COMPUTE.search(name)
    if arm:
        name = arm["name"]
    return None if not name or name.lower() in NOT_A_CLUSTER else name


def _resolve_cluster(key_path: tuple, value: str, known: dict[str, str], emit: Emit, workspace: str | None) -> None:
    """In a rendered workspace an unknown cluster is an error (its values declare every cluster). Elsewhere a
    cluster is often created outside YAML (the portal, `az ml compute create`, another repo): a warning, with the
    near miss if there is one."""
    name = cluster_name(value)
    if name is None or name in known:
        return
    listed = ", ".join(sorted(known))
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    if workspace is not None:
        hint = f"did you mean {close[0]}? " if close else ""
        emit(key_path, f"no cluster named {name!r} in workspace {workspace} ({hint}known clusters: {listed})",
             rule="compute")
    elif close:
        emit(key_path, f"no cluster named {name!r} among this project's specs (did you mean {close[0]}? known "
             f"clusters: {listed}); fine if the workspace has it", WARNING, "compute")
    else:
        emit(key_path, f"cluster {name!r} is not among the clusters this project's specs declare ({listed}): make "
             "sure the workspace has it", WARNING, "compute")
