"""`python -m tools apply`: run a workspace's plan step by step. A dry run (the plan, printed) unless --execute.

Every step can run again on the state it left (``tools.operate.reconcile``): resources are shown first, created
when missing, updated when they differ, left alone when equal, and each step says which. Captured values flow
into later steps: the job's name from `az ml job create --query name -o tsv` feeds the registration
(`--path azureml://jobs/$JOB_NAME/outputs/...`); `--job-name` supplies it when register runs without train. The
model version a run registers must be free before a job is submitted (`--next-model-version` picks the next one
and writes it to the workspace's values). The deployment rolls out blue/green beside a live one
(``tools.operate.rollout``); the quota it needs is checked against Azure's usage before it is created.

The first failing step stops the run with its name and the exact command (exit 1: the cloud refused it); a failed
deployment prints the `get-logs` commands for both containers. Destructive steps (endpoint delete) are refused
unless --yes is given: the refusal comes before anything runs.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import re
import sys
import time
from typing import Any

from tools.core.errors import CloudRefused, UserError
from tools.core.files import atomic_write_text
from tools.core.repo import active
from tools.core.text import counted
from tools.operate import bootstrap, evaluation, jobs, reconcile, rollout
from tools.operate.az import Az, run_log_path
from tools.operate.options import add_plan_arguments, plan_from_args
from tools.operate.plan import title
from tools.operate.promote import set_values_key
from tools.operate.stages import job_spec, registered_model
from tools.operate.steps import (
    JOB_NAME_VAR,
    SAMPLE_REQUEST,
    SAMPLE_REQUEST_HINT,
    VARIABLE,
    Step,
    format_plan,
    free_variables,
    shell_command,
)
from tools.operate.workspace import Workspace
from tools.render.engine import render


def substitute(argv: tuple[str, ...], variables: dict[str, str]) -> list[str]:
    """Replace ``${VAR}`` references with captured values (every one must be known)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise UserError(f"${{{name}}} is not set: run the stage that captures it or pass it (--job-name)")
        return variables[name]

    return [VARIABLE.sub(one, word) for word in argv]


def _hints(step: Step, variables: dict[str, str]) -> None:
    for hint in jobs.logs_hint(step, variables):
        print(f"hint: {hint}", file=sys.stderr)


def with_sets(data: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """The spec as `--set key.path=value` leaves it (what Azure receives)."""
    out = copy.deepcopy(data)
    for pair in sets:
        path, _, value = pair.partition("=")
        *parents, last = path.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return out


def run_step(az: Az, ws: Workspace, step: Step, variables: dict[str, str]) -> str:
    """Run one step; returns what it did (created / updated / unchanged / done / the captured value)."""
    argv = substitute(step.argv, variables)
    if step.action == "ensure":
        return reconcile.ensure(az, ws, step, argv)
    if step.action == "model-free":
        return reconcile.model_free(az, ws, step)
    if step.action == "register":
        return reconcile.register(az, ws, step, argv)
    if step.action == "rollout":
        sets = substitute(step.sets, variables)
        resolved = dataclasses.replace(step, sets=tuple(sets), data=with_sets(step.data, sets))
        return rollout.deploy(az, ws, resolved)
    if step.action in bootstrap.ACTIONS:
        return bootstrap.run_step(az, ws, step, argv, variables)
    if step.action == "verdict":
        download = substitute((step.data["download"],), variables)[0]
        return evaluation.decide(evaluation.read_verdict(active().root, download), variables)
    if step.action == "gate":
        return evaluation.gate(variables, substitute((step.data["candidate"],), variables)[0])
    if step.action == "follow":
        return jobs.follow(az, step, argv)
    if step.action == "job-wait":
        return jobs.wait(az, step, argv, variables)
    if step.captures:
        value = az.capture(argv, f"step {step.name}")
        if not value:
            raise CloudRefused(f"step {step.name} failed (it printed no {step.captures}): {shell_command(argv)}")
        if step.expect is not None and value != step.expect:
            raise CloudRefused(f"step {step.name} failed ({step.captures} is {value}, expected {step.expect})")
        variables[step.captures] = value
        return f"{step.captures}={value}"
    az.run(argv, f"step {step.name}")
    return "done"


def seconds(value: float) -> str:
    """A duration as people read it: 0.4 s, 12 s, 3 min 05 s."""
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    minutes, rest = divmod(int(round(value)), 60)
    return f"{minutes} min {rest:02d} s"


def execute(az: Az, ws: Workspace, steps: list[Step], variables: dict[str, str]) -> dict[str, str]:
    """Run the steps in order, one line per step when it ends (what it did and how long it took); returns the
    captured variables. Raises CloudRefused at the first failure."""
    variables = dict(variables)
    for needed in dict.fromkeys(n for step in steps for n in step.needs_files):
        if not (active().root / needed).is_file():
            hint = f" (write it with: {SAMPLE_REQUEST_HINT})" if needed == SAMPLE_REQUEST else ""
            name = next(step.name for step in steps if needed in step.needs_files)
            raise UserError(f"step {name}: {needed} does not exist{hint}")
    width = len(str(len(steps)))
    for index, step in enumerate(steps, 1):
        started = time.monotonic()
        try:
            outcome = run_step(az, ws, step, variables)
        except CloudRefused as error:
            message = str(error)
            if not message.startswith("rollout "):  # a blue/green rollout prints its new deployment's own
                _hints(step, variables)
            prefixed = message.startswith(("step ", "rollout "))
            raise CloudRefused(message if prefixed else f"step {step.name}: {message}") from None
        took = seconds(time.monotonic() - started)
        print(f"[{index:>{width}}/{len(steps)}] {step.name}: {outcome} ({took})", flush=True)
    return variables


def bump_model_version(az: Az, ws: Workspace, job: str | None) -> bool:
    """--next-model-version: write the next free registered_model.version to the workspace's values (and its
    render); True when it changed."""
    name, version = registered_model(ws, job_spec(ws, job))
    if version is None:
        return False  # a finetuning job without a version: the service registers the next free one
    free = reconcile.next_free_version(az, ws, name)
    if version.isdigit() and int(version) >= free:
        return False  # the values' version is still free
    path = active().workspaces_dir / f"{ws.values_name}.yaml"
    atomic_write_text(path, set_values_key(path.read_text(), ("registered_model", "version"), free))
    render(ws.values_name, active().root).write()
    print(f"--next-model-version: {name}:{version} exists; workspaces/{ws.values_name}.yaml now registers "
          f"{name}:{free} (commit it)", flush=True)  # fmt: skip
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_arguments(parser)
    parser.add_argument("--execute", action="store_true", help="run the commands (default: print them: a dry run)")
    parser.add_argument("--yes", action="store_true", help="allow destructive steps (endpoint delete)")
    parser.add_argument("--job-name", metavar="NAME", help="JOB_NAME for a register stage run without train")
    parser.add_argument(
        "--next-model-version", action="store_true",
        help="when registered_model.version exists already, register the next free version (written to the values)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    stages, ws, steps = plan_from_args(args)
    variables = {JOB_NAME_VAR: args.job_name} if args.job_name else {}
    missing = [v for v in free_variables(steps) if v not in variables]
    destructive = [s.name for s in steps if s.destructive]
    invocation = f"python -m tools apply --workspace {ws.values_name} --stage {args.stage}"
    if not args.execute:
        sys.stdout.write(format_plan(title(ws, stages), invocation, steps))
        note = f"; {', '.join(destructive)} will need --yes" if destructive and not args.yes else ""
        print(f"dry run: {counted(len(steps), 'step')} planned, nothing run (pass --execute to run them){note}",
              file=sys.stderr)
        return 0
    if destructive and not args.yes:
        raise UserError(f"refusing to run destructive steps without --yes: {', '.join(destructive)} (nothing was run)")
    if missing:
        raise UserError(f"stages {','.join(stages)} need {', '.join(missing)}: pass --job-name NAME (the job whose "
                        "output they use) or add stage train")
    Az.require()
    log = run_log_path(active().runs_dir, ws.values_name)
    az = Az(active().root, log)
    started = time.monotonic()
    print(f"apply: {ws.values_name}: {counted(len(steps), 'step')} ({', '.join(stages)}); az output: "
          f"{active().relative(log)}", flush=True)  # fmt: skip
    try:
        bump = args.next_model_version and {"train", "register"} & set(stages)
        if bump and bump_model_version(az, ws, args.job):
            stages, ws, steps = plan_from_args(args)
        execute(az, ws, steps, variables)
    except CloudRefused:
        print(f"hint: what az printed is in {active().relative(log)}", file=sys.stderr)
        raise
    finally:
        az.close()
    done = seconds(time.monotonic() - started)
    print(f"apply: {ws.values_name}: {counted(len(steps), 'step')} done in {done} ({', '.join(stages)})")
    return 0
