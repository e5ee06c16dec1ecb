"""`python -m tools apply`: run a workspace's plan step by step. A dry run (the plan, printed) unless --execute.

Each step runs `az` as a subprocess from the repo root, output streamed; a step that captures a value (the job's
name from `az ml job create --query name -o tsv`, resource ids) has its stdout read instead. Values flow into later
steps: the model registration uses the validated model spec with `--path azureml://jobs/$JOB_NAME/outputs/...`
(the only value not known at render time), so no second render is needed. `--job-name` supplies JOB_NAME when the
register stage runs without the train stage. Steps whose `show` probe succeeds reuse what exists.

The first failing step stops the run with its name and the exact command; a failed deployment also prints the
`az ml online-deployment get-logs` commands for both containers. Destructive steps (endpoint delete) are refused
unless --yes is given: the refusal comes before anything runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tools.core.errors import UserError
from tools.operate.plan import (
    JOB_NAME_VAR,
    SAMPLE_REQUEST,
    SAMPLE_REQUEST_HINT,
    VARIABLE,
    Step,
    add_plan_arguments,
    format_plan,
    free_variables,
    plan_from_args,
    shell_command,
)


class StepFailed(UserError):
    """A step exited non-zero (exit 1: the cloud said no, not a mistake in the arguments)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


def substitute(argv: tuple[str, ...], variables: dict[str, str]) -> list[str]:
    """Replace ``${VAR}`` references with captured values (every one must be known)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise UserError(f"${{{name}}} is not set: run the stage that captures it or pass it (--job-name)")
        return variables[name]

    return [VARIABLE.sub(one, word) for word in argv]


def _stream(argv: list[str], cwd: Path) -> int:
    return subprocess.run(argv, cwd=cwd, check=False).returncode


def _capture(argv: list[str], cwd: Path) -> tuple[int, str]:
    result = subprocess.run(argv, cwd=cwd, check=False, stdout=subprocess.PIPE, text=True)
    return result.returncode, result.stdout.strip()


def _quiet(argv: list[str], cwd: Path) -> int:
    return subprocess.run(argv, cwd=cwd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def _fail(step: Step, argv: list[str], why: str) -> StepFailed:
    for hint in step.on_failure:
        print(f"hint: {shell_command(hint)}", file=sys.stderr)
    return StepFailed(f"step {step.name} failed ({why}): {shell_command(argv)}")


def execute(steps: list[Step], root: Path, variables: dict[str, str]) -> dict[str, str]:
    """Run the steps in order; returns the captured variables. Raises StepFailed at the first failure."""
    variables = dict(variables)
    for index, step in enumerate(steps, 1):
        for needed in step.needs_files:
            if not (root / needed).is_file():
                hint = f" (write it with: {SAMPLE_REQUEST_HINT})" if needed == SAMPLE_REQUEST else ""
                raise UserError(f"step {step.name}: {needed} does not exist{hint}")
        argv = substitute(step.argv, variables)
        print(f"==> [{index}/{len(steps)}] {step.name}: {step.description}", flush=True)
        if step.skip_if:
            probe = substitute(step.skip_if, variables)
            if _quiet(probe, root) == 0:
                print(f"    exists, reused ({shell_command(probe)})", flush=True)
                continue
        print(f"    $ {shell_command(argv)}", flush=True)
        if step.captures:
            code, value = _capture(argv, root)
            if code != 0:
                raise _fail(step, argv, f"exit {code}")
            if not value:
                raise _fail(step, argv, f"it printed no {step.captures}")
            if step.expect is not None and value != step.expect:
                raise _fail(step, argv, f"{step.captures} is {value}, expected {step.expect}")
            variables[step.captures] = value
            print(f"    {step.captures}={value}", flush=True)
        else:
            code = _stream(argv, root)
            if code != 0:
                raise _fail(step, argv, f"exit {code}")
    return variables


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_arguments(parser)
    parser.add_argument("--execute", action="store_true", help="run the commands (default: print them: a dry run)")
    parser.add_argument("--yes", action="store_true", help="allow destructive steps (endpoint delete)")
    parser.add_argument("--job-name", metavar="NAME", help="JOB_NAME for a register stage run without train")


def run(args: argparse.Namespace) -> int:
    name, stages, ws, steps = plan_from_args(args)
    variables = {JOB_NAME_VAR: args.job_name} if args.job_name else {}
    missing = [v for v in free_variables(steps) if v not in variables]
    destructive = [s.name for s in steps if s.destructive]
    if not args.execute:
        sys.stdout.write(
            format_plan(ws, stages, steps, f"python -m tools apply --workspace {name} --stage {args.stage}")
        )
        note = f"; {', '.join(destructive)} will need --yes" if destructive and not args.yes else ""
        print(f"dry run: {len(steps)} steps planned, nothing run (pass --execute to run them){note}", file=sys.stderr)
        return 0
    if destructive and not args.yes:
        raise UserError(f"refusing to run destructive steps without --yes: {', '.join(destructive)} (nothing was run)")
    if missing:
        raise UserError(f"stages {','.join(stages)} need {', '.join(missing)}: pass --job-name NAME or add stage train")
    if shutil.which("az", path=os.environ.get("PATH")) is None:
        raise UserError("az: not found on PATH (install the Azure CLI and `az extension add --name ml`)")
    execute(steps, args.root.resolve(), variables)
    print(f"apply: {name}: {len(steps)} steps done ({', '.join(stages)})")
    return 0
