"""The command-line options `plan`, `apply`, `rollback` and `drift` share, and the plan they select."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.core.repo import active
from tools.operate.stages import DEFAULT_JOB, STAGES, build_plan, parse_stages
from tools.operate.steps import Step
from tools.operate.workspace import Workspace, load_workspace
from tools.render.values import DEFAULT_WORKSPACE


def add_workspace_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", metavar="NAME", default=None, help="workspace values name (default: dev)")
    parser.add_argument("--layers", default="ABCD", help="validation layers run first (default ABCD)")
    parser.add_argument("--root", type=Path, default=None, help="repo root (default: this checkout)")


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    add_workspace_arguments(parser)
    parser.add_argument(
        "--stage", default="all", metavar="STAGE[,STAGE]",
        help=f"all (default) or a comma-separated list of: {', '.join(STAGES)}",
    )  # fmt: skip
    parser.add_argument("--job", metavar="PATH", help=f"job spec to submit (default: jobs/{DEFAULT_JOB})")


def workspace_from_args(args: argparse.Namespace) -> Workspace:
    return load_workspace(args.workspace or DEFAULT_WORKSPACE, active().root, args.layers.upper())


def plan_from_args(args: argparse.Namespace) -> tuple[list[str], Workspace, list[Step]]:
    """Stages, the loaded (rendered once, validated) workspace and its plan, from the shared options."""
    stages = parse_stages(args.stage)
    ws = workspace_from_args(args)
    return stages, ws, build_plan(ws, stages, args.job)
