"""Every `az ml` command the operate tools send for endpoints, deployments, models and jobs, as pure argv builders.

One source for the printed plan (``tools.operate.steps`` renders an argv as shell) and for `apply --execute`
(``tools.operate.az`` runs the same argv): nothing else in ``tools/operate`` spells an `online-...`, `model` or
`job` command. ``scope`` is the `-g RG -w WS --subscription SUB` words of a workspace (``Workspace.scope``); a
word may hold a ``${VAR}`` reference that the plan prints live and apply substitutes.

Facts (learn.microsoft.com `how-to-safely-rollout-online-endpoints`, `how-to-troubleshoot-online-endpoints`,
`reference-yaml-deployment-managed-online`; Azure/azure-cli#23496): `create` of an existing endpoint or deployment
fails, so callers `show` first; `--query X -o tsv` prints the bare value; traffic values are integers adding up to
100 across the named deployments; a deployment's logs are per container (inference-server, storage-initializer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tools.core.repo import kinds

Argv = tuple[str, ...]
Scope = Sequence[str]

ENDPOINT = ("az", "ml", "online-endpoint")
DEPLOYMENT = ("az", "ml", "online-deployment")
MODEL = ("az", "ml", "model")
JOB = ("az", "ml", "job")
LOG_CONTAINERS = ("inference-server", "storage-initializer")
LOG_LINES = "200"


def tsv(query: str) -> Argv:
    """`--query X -o tsv`: the bare value on stdout."""
    return ("--query", query, "-o", "tsv")


# specs of any kind (the `az ml ... create` words of a kind come from schemas/kinds.yaml) ------------------------
def noun_of(kind: str) -> Argv:
    """`az ml <noun>` of a spec kind: ``az ml compute create`` -> ``("az", "ml", "compute")``."""
    return tuple(kinds()[kind]["az"].split()[:-1])


def create_from_file(kind: str, spec: str, scope: Scope) -> Argv:
    return (*kinds()[kind]["az"].split(), "-f", spec, *scope)


def show_named(kind: str, name: str, version: str | None, scope: Scope) -> Argv:
    """`az ml <noun> show` of a named (and versioned) resource."""
    return (*noun_of(kind), "show", "--name", name, *(("--version", version) if version is not None else ()), *scope)


# jobs ------------------------------------------------------------------------------------------------------------
def job_create(create: Sequence[str], spec: str, scope: Scope, sets: Sequence[str] = ()) -> Argv:
    """Submit ``spec`` with its kind's create words (``sets``: `--set path=value` words); prints the job's name."""
    return (*create, "-f", spec, *scope, *sets, *tsv("name"))


def job_stream(name: str, scope: Scope) -> Argv:
    return (*JOB, "stream", "--name", name, *scope)


def job_query(name: str, query: str, scope: Scope) -> Argv:
    """One field of a job (`status`, `outputs.registered_model.version`)."""
    return (*JOB, "show", "--name", name, *scope, *tsv(query))


def job_download_all(name: str, scope: Scope) -> Argv:
    """What a failed or canceled job left: its logs and outputs."""
    return (*JOB, "download", "--name", name, "--all", "--download-path", f"job-logs/{name}", *scope)


def job_download_output(name: str, output: str, path: str, scope: Scope) -> Argv:
    """One named output of a job into ``path`` (`az ml job download --output-name`)."""
    return (*JOB, "download", "--name", name, "--output-name", output, "--download-path", path, *scope)


# models ----------------------------------------------------------------------------------------------------------
def model_show(name: str, version: str, scope: Scope) -> Argv:
    return (*MODEL, "show", "--name", name, "--version", version, *scope)


def model_show_in_registry(name: str, version: str, registry: str) -> Argv:
    return (*MODEL, "show", "--name", name, "--version", version, "--registry-name", registry)


def model_list(name: str, scope: Scope) -> Argv:
    return (*MODEL, "list", "--name", name, *scope)


def model_list_table(name: str, scope: Scope) -> Argv:
    return (*model_list(name, scope), "-o", "table")


def model_create(spec: str, path: str, scope: Scope) -> Argv:
    """Register ``spec`` with its `path` replaced by ``path`` (the job's output)."""
    return (*MODEL, "create", "-f", spec, "--path", path, *scope)


def model_share(name: str, version: str, registry: str, scope: Scope) -> Argv:
    """Copy a workspace model version into a registry under the same name and version."""
    return (*MODEL, "share", "--name", name, "--version", version, "--registry-name", registry,
            "--share-with-name", name, "--share-with-version", version, *scope)  # fmt: skip


def model_set(name: str, version: str, values: Mapping[str, str], scope: Scope) -> Argv:
    """`az ml model update --set key=value ...`: the fields Azure lets a version change (tags, description)."""
    sets = [word for key, value in values.items() for word in ("--set", f"{key}={value}")]
    return (*MODEL, "update", "--name", name, "--version", version, *sets, *scope)


# online endpoints ------------------------------------------------------------------------------------------------
def endpoint_show(name: str, scope: Scope) -> Argv:
    return (*ENDPOINT, "show", "--name", name, *scope)


def endpoint_update_file(spec: str, scope: Scope) -> Argv:
    return (*ENDPOINT, "update", "-f", spec, *scope)


def traffic_word(shares: Mapping[str, int | str]) -> str:
    """``{"blue": 90, "green": 10}`` -> ``blue=90 green=10`` (the `--traffic` / `--mirror-traffic` value)."""
    return " ".join(f"{name}={pct}" for name, pct in shares.items())


def endpoint_traffic(name: str, shares: str, scope: Scope) -> Argv:
    return (*ENDPOINT, "update", "--name", name, "--traffic", shares, *scope)


def endpoint_mirror(name: str, shares: str, scope: Scope) -> Argv:
    return (*ENDPOINT, "update", "--name", name, "--mirror-traffic", shares, *scope)


def endpoint_invoke(name: str, request_file: str, scope: Scope, deployment: str | None = None) -> Argv:
    """Score ``request_file``: through live traffic, or one deployment directly (`--deployment-name`)."""
    target = ("--deployment-name", deployment) if deployment else ()
    return (*ENDPOINT, "invoke", "--name", name, *target, "--request-file", request_file, *scope)


def endpoint_delete(name: str, scope: Scope) -> Argv:
    return (*ENDPOINT, "delete", "--name", name, *scope, "--yes")


# online deployments ----------------------------------------------------------------------------------------------
def deployment_create(spec: str, name: str | None, scope: Scope, all_traffic: bool = False,
                      sets: Sequence[str] = ()) -> Argv:  # fmt: skip
    """``sets``: `--set key=value` words (the model a `type: finetuning` job registered)."""
    named = ("--name", name) if name is not None else ()
    return (*DEPLOYMENT, "create", "-f", spec, *named, *scope, *(("--all-traffic",) if all_traffic else ()), *sets)


def deployment_update(spec: str, name: str, scope: Scope, sets: Sequence[str] = ()) -> Argv:
    return (*DEPLOYMENT, "update", "-f", spec, "--name", name, *scope, *sets)


def deployment_show(name: str, endpoint: str, scope: Scope) -> Argv:
    return (*DEPLOYMENT, "show", "--name", name, "--endpoint-name", endpoint, *scope)


def deployment_state(name: str, endpoint: str, scope: Scope) -> Argv:
    return (*deployment_show(name, endpoint, scope), *tsv("provisioning_state"))


def deployment_list(endpoint: str, scope: Scope) -> Argv:
    return (*DEPLOYMENT, "list", "--endpoint-name", endpoint, *scope)


def deployment_delete(name: str, endpoint: str, scope: Scope) -> Argv:
    return (*DEPLOYMENT, "delete", "--name", name, "--endpoint-name", endpoint, *scope, "--yes")


def deployment_logs(name: str, endpoint: str, scope: Scope) -> tuple[Argv, ...]:
    """The inference server's log and the storage initializer's (model download and mount failures)."""
    base = (*DEPLOYMENT, "get-logs", "--name", name, "--endpoint-name", endpoint, *scope)
    return tuple((*base, "--container", container, "--lines", LOG_LINES) for container in LOG_CONTAINERS)


def set_words(pairs: Sequence[str]) -> Argv:
    """``("model=azureml:m:1",)`` -> ``("--set", "model=azureml:m:1")``."""
    return tuple(word for pair in pairs for word in ("--set", pair))
