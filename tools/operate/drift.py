"""`python -m tools drift --workspace W`: what Azure holds against the rendered specs. Exit 0 when they agree,
1 on drift (a diff per resource, difflib), 2 when it cannot run.

Each resource the workspace's render defines is asked for with `az ml <noun> show -o yaml` and compared on the
keys the spec sets (``tools.operate.compare``: server fields ignored, ids and enum casing normalised). Compared:
the compute cluster, the endpoint and its live deployment (the one with the most traffic, whatever its colour);
versioned assets (environments, components, data, the registered model) only have to exist, since a version
is immutable. A resource that does not exist is drift too (`missing in Azure`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tools.core.repo import active
from tools.core.text import counted
from tools.operate import commands
from tools.operate.az import Az
from tools.operate.compare import diff_text
from tools.operate.options import add_workspace_arguments, workspace_from_args
from tools.operate.rollout import AzureEndpoint
from tools.operate.stages import show_of
from tools.operate.workspace import RenderedSpec, Workspace

COMPARED = ("amlCompute", "managedOnlineEndpoint")
VERSIONED = ("environment", "commandComponent", "data")


def _live_deployment(az: Az, ws: Workspace, spec: RenderedSpec) -> tuple[str, dict[str, Any] | None]:
    endpoint = AzureEndpoint(az, ws, str(spec.data["endpoint_name"]))
    if az.show(commands.endpoint_show(endpoint.name, ws.scope())) is None:
        return str(spec.data["name"]), None
    traffic = endpoint.traffic()
    live = sorted((pct, name) for name, pct in traffic.items() if pct > 0)
    name = live[-1][1] if live else str(spec.data["name"])
    return name, az.show(commands.deployment_show(name, endpoint.name, ws.scope()), output="yaml")


def drift_report(az: Az, ws: Workspace) -> list[str]:
    """One entry per drifted resource: a header line and its diff."""
    found: list[str] = []
    for spec in ws.specs:
        if spec.kind in COMPARED:
            show = show_of(ws, spec.kind, spec.data)
            live = az.show(show, output="yaml") if show else None
            label = f"{spec.kind} {spec.data.get('name')} ({spec.path})"
        elif spec.kind == "managedOnlineDeployment":
            name, live = _live_deployment(az, ws, spec)
            label = f"{spec.kind} {name} on {spec.data.get('endpoint_name')} ({spec.path})"
        elif spec.kind in VERSIONED or (spec.kind == "model" and "/JOB_NAME/" not in str(spec.data.get("path"))):
            show = show_of(ws, spec.kind, spec.data)
            if show and az.show(show) is None:
                found.append(f"drift: {spec.kind} {spec.data.get('name')}:{spec.data.get('version')} ({spec.path}): "
                             "missing in Azure")  # fmt: skip
            continue
        else:
            continue
        if live is None:
            found.append(f"drift: {label}: missing in Azure")
            continue
        text = diff_text(spec.kind, spec.data, live, spec.path)
        if text:
            found.append(f"drift: {label}: differs on the keys the spec sets\n{text.rstrip()}")
    return found


add_arguments = add_workspace_arguments


def run(args: argparse.Namespace) -> int:
    ws = workspace_from_args(args)
    Az.require()
    found = drift_report(Az(active().root), ws)
    if found:
        print("\n".join(found))
        print(f"drift: {ws.values_name}: {counted(len(found), 'resource')} differ from the rendered specs",
              file=sys.stderr)
        return 1
    print(f"drift: {ws.values_name} ({ws.ml_workspace}): Azure matches the rendered specs")
    return 0
