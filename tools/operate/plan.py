"""`python -m tools plan`: the ordered `az ml` commands (and `az` for the identity) that take a workspace from
nothing to a smoke-tested endpoint, printed as copy-pasteable shell.

Stages, in order: bootstrap, train, register, deploy, smoke, teardown (``tools.operate.stages``). The workspace is
rendered once and validated first; a plan is refused while validation reports errors. Every `-f` points at a
rendered, validated spec. Each resource is shown first and created, updated or left as it is; the deployment
takes all traffic on a new endpoint and rolls out blue/green beside a live one (`python -m tools apply` decides
from the endpoint's traffic). The quota each compute and deployment needs is printed with its step.
"""

from __future__ import annotations

import argparse
import sys

from tools.operate.options import add_plan_arguments, plan_from_args
from tools.operate.steps import format_plan
from tools.operate.workspace import Workspace


def title(ws: Workspace, stages: list[str]) -> str:
    return (f"Plan for workspace {ws.values_name} ({ws.ml_workspace} in {ws.resource_group}), "
            f"stages: {', '.join(stages)}.")  # fmt: skip


add_arguments = add_plan_arguments


def run(args: argparse.Namespace) -> int:
    stages, ws, steps = plan_from_args(args)
    invocation = f"python -m tools plan --workspace {ws.values_name} --stage {args.stage}"
    sys.stdout.write(format_plan(title(ws, stages), invocation, steps))
    return 0
