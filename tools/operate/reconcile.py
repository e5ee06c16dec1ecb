"""Idempotent steps: show first, create what is missing, update what differs, leave what is equal, and say which.

  ensure      compute (create -f is the SDK's create-or-update: scale settings change, `size` cannot), endpoint
              (`online-endpoint update -f`), versioned assets (environment, component, data: an existing
              name:version is immutable and left as it is)
  model-free  the model version a run will register must not exist: it stops before a job is submitted, with
              the line that says what to do (bump `registered_model.version`, or `--next-model-version`)
  register    `az ml model create` of the job's output; an existing version stops with the same line
Sources: create fails when the resource exists (Azure/azure-cli#23496); model versions are immutable
(learn.microsoft.com `how-to-manage-models`); compute create updates scale settings (`reference-yaml-compute-aml`).
"""

from __future__ import annotations

from typing import Any

from tools.core.errors import CloudRefused
from tools.operate import commands, quota
from tools.operate.az import Az
from tools.operate.compare import differing_keys
from tools.operate.steps import Step
from tools.operate.workspace import Workspace

IMMUTABLE_COMPUTE = ("size",)  # unverified against the service (`size` is set at creation): plan for it


def taken_line(ws: Workspace, name: str, version: str) -> str:
    return (
        f"model {name}:{version} already exists in {ws.ml_workspace} and model versions are immutable: bump "
        f"registered_model.version in workspaces/{ws.values_name}.yaml, or rerun with --next-model-version "
        "(picks the next free version and writes it there)"
    )


def ensure(az: Az, ws: Workspace, step: Step, argv: list[str]) -> str:
    assert step.show is not None and step.kind is not None
    live = az.show(step.show)
    if live is None:
        if step.kind == "amlCompute":
            quota.check(az, ws, quota.compute_need(step.data))
        az.run(argv, step.name)
        return "created"
    if step.update is None:
        return "unchanged (exists; versions are immutable: a changed spec needs a new version)"
    differs = differing_keys(step.kind, step.data, live)
    if not differs:
        return "unchanged"
    if step.kind == "amlCompute":
        fixed = [k for k in differs if k in IMMUTABLE_COMPUTE]
        if fixed:
            raise CloudRefused(
                f"compute {step.data.get('name')}: {', '.join(fixed)} cannot change on an existing cluster "
                f"({live.get('size')} in Azure, {step.data.get('size')} in {step.spec}): use a new cluster name"
            )
        quota.check(az, ws, quota.compute_need(step.data))
    az.run(list(step.update), step.name)
    return f"updated ({', '.join(differs)})"


def model_free(az: Az, ws: Workspace, step: Step) -> str:
    assert step.show is not None
    if az.show(step.show) is not None:
        name, version = step.show[step.show.index("--name") + 1], step.show[step.show.index("--version") + 1]
        raise CloudRefused(taken_line(ws, name, version) + " (nothing was submitted)")
    return "free"


def register(az: Az, ws: Workspace, step: Step, argv: list[str]) -> str:
    assert step.show is not None
    if az.show(step.show) is not None:
        raise CloudRefused(taken_line(ws, str(step.data.get("name")), str(step.data.get("version"))))
    az.run(argv, step.name)
    return "created"


def next_free_version(az: Az, ws: Workspace, name: str) -> int:
    """One more than the highest integer version of ``name`` in the workspace (1 when there is none)."""
    rows: Any = az.json(commands.model_list(name, ws.scope()), f"list the versions of {name}")
    versions = [int(str(row.get("version"))) for row in rows or [] if str(row.get("version", "")).isdigit()]
    return max(versions, default=0) + 1
