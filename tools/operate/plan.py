"""`python -m tools plan`: the ordered `az ml` commands (and `az` for the identity) that take a workspace from
nothing to a smoke-tested endpoint, printed as copy-pasteable shell.

Stages, in order: bootstrap (user-assigned identity + role assignments), train (compute, environments,
components, data, submit the job and stream it), register (the job's trained_model output as a model version),
deploy (endpoint, deployment with all traffic), smoke (invoke the sample request), teardown (delete the endpoint).
The workspace is rendered and validated first; a plan is refused while validation reports errors. Every `-f`
points at a rendered, validated spec; which specs exist is read from the render, not from a list in code.

Plan steps are data (`Step`) built by pure functions; `tools.operate.apply` runs them, this module only prints them.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.repo import REPO_ROOT, kinds

STAGES = ("bootstrap", "train", "register", "deploy", "smoke", "teardown")
JOB_NAME_VAR = "JOB_NAME"
SAMPLE_REQUEST = "endpoints/sample_score.json"
SAMPLE_REQUEST_HINT = "python -m tools score sample-request"
# Role assignments of the endpoint identity: (role, scope variable or literal, why).
ROLE_ASSIGNMENTS: tuple[tuple[str, str, str], ...] = (
    ("Contributor", "resource-group", "manage the endpoint's resources in the resource group"),
    ("Storage Blob Data Reader", "${STORAGE_ID}", "read the model files from the workspace storage account"),
    ("AcrPull", "${ACR_ID}", "pull the serving image from the workspace container registry"),
)
# Spec kinds created in the train stage, in dependency order (an environment before the component that uses it).
TRAIN_KINDS = ("amlCompute", "environment", "commandComponent", "data")
JOB_KINDS = ("pipelineJob", "commandJob")
# The job submitted unless --job names another: the registry pipeline (design.md's main path), when rendered.
DEFAULT_JOB = "finetune.yml"
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


@dataclass(frozen=True)
class Step:
    """One command of a plan. ``argv`` may hold ``${VAR}`` references to values captured by earlier steps."""

    name: str  # stage.what, e.g. "train.job-submit"
    stage: str
    argv: tuple[str, ...]
    description: str
    captures: str | None = None  # variable set from the command's stdout (`--query ... -o tsv`)
    expect: str | None = None  # the captured value must be exactly this (e.g. job status Completed)
    destructive: bool = False  # refused by apply without --yes
    skip_if: tuple[str, ...] | None = None  # probe: when it exits 0 the resource exists and the step is skipped
    spec: str | None = None  # the `-f` file, repo-relative
    needs_files: tuple[str, ...] = ()  # local files that must exist before the step runs
    on_failure: tuple[tuple[str, ...], ...] = ()  # commands that help diagnose a failure (printed, not run)

    def variables(self) -> list[str]:
        """The ``${VAR}`` names this step reads."""
        words = [*self.argv, *(self.skip_if or ())]
        return list(dict.fromkeys(name for word in words for name in VARIABLE.findall(word)))


@dataclass(frozen=True)
class Workspace:
    """What the commands need to know about a workspace (from its values and its render)."""

    name: str  # workspace values name (dev, prod)
    subscription: str
    resource_group: str
    workspace: str  # Azure ML workspace name
    location: str | None
    identity: str
    out_dir: str  # where the specs are, repo-relative ("." for the default workspace)
    specs: tuple[tuple[str, str, dict[str, Any]], ...] = field(default_factory=tuple)  # (path, kind, data)

    def scope(self) -> list[str]:
        return ["-g", self.resource_group, "-w", self.workspace, "--subscription", self.subscription]

    def of_kind(self, *wanted: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [spec for spec in self.specs if spec[1] in wanted]


# ------------------------------------------------------------------------------------------------ pure builders


def _az(kind: str) -> list[str]:
    """The `az ml ... create` words for a spec kind (from schemas/kinds.yaml: one source)."""
    return kinds()[kind]["az"].split()


def _noun(kind: str) -> list[str]:
    return _az(kind)[:-1]  # "az ml compute create" -> ["az", "ml", "compute"]


def _probe(ws: Workspace, kind: str, data: dict[str, Any]) -> tuple[str, ...] | None:
    """`az ml <noun> show` for a named (and versioned) resource: exists -> reuse it."""
    name = data.get("name")
    if not name:
        return None
    version = data.get("version")
    argv = [*_noun(kind), "show", "--name", str(name)]
    if version is not None:
        argv += ["--version", str(version)]
    return (*argv, *ws.scope())


def bootstrap_steps(ws: Workspace) -> list[Step]:
    sub = ["--subscription", ws.subscription]
    rg_scope = f"/subscriptions/{ws.subscription}/resourceGroups/{ws.resource_group}"
    location = ["--location", ws.location] if ws.location else []
    steps = [
        Step(
            "bootstrap.identity",
            "bootstrap",
            (
                "az",
                "identity",
                "create",
                "--name",
                ws.identity,
                "-g",
                ws.resource_group,
                *location,
                *sub,
                "--query",
                "principalId",
                "-o",
                "tsv",
            ),
            f"user-assigned managed identity {ws.identity} for the endpoint (create or reuse)",
            captures="PRINCIPAL_ID",
        ),
    ]
    for var, field_name in (("STORAGE_ID", "storage_account"), ("ACR_ID", "container_registry")):
        steps.append(
            Step(
                f"bootstrap.{field_name.replace('_', '-')}",
                "bootstrap",
                (
                    "az",
                    "ml",
                    "workspace",
                    "show",
                    "--name",
                    ws.workspace,
                    "-g",
                    ws.resource_group,
                    *sub,
                    "--query",
                    field_name,
                    "-o",
                    "tsv",
                ),
                f"resource id of the workspace {field_name.replace('_', ' ')}",
                captures=var,
            )
        )
    for role, scope, why in ROLE_ASSIGNMENTS:
        steps.append(
            Step(
                f"bootstrap.role-{role.lower().replace(' ', '-')}",
                "bootstrap",
                (
                    "az",
                    "role",
                    "assignment",
                    "create",
                    "--assignee-object-id",
                    "${PRINCIPAL_ID}",
                    "--assignee-principal-type",
                    "ServicePrincipal",
                    "--role",
                    role,
                    "--scope",
                    rg_scope if scope == "resource-group" else scope,
                    *sub,
                ),
                f"{role} for {ws.identity}: {why}",
            )
        )
    return steps


def _job_spec(ws: Workspace, job: str | None) -> tuple[str, str, dict[str, Any]]:
    jobs = ws.of_kind(*JOB_KINDS)
    if not jobs:
        raise UserError(f"{ws.name}: the render has no job spec to submit")
    if job is None:
        preferred = [spec for spec in jobs if Path(spec[0]).name == DEFAULT_JOB]
        return (preferred or jobs)[0]
    wanted = os.path.normpath(job)
    for spec in jobs:
        if wanted in (os.path.normpath(spec[0]), os.path.normpath(os.path.relpath(spec[0], ws.out_dir))):
            return spec
    raise UserError(f"--job {job}: not a rendered job spec of {ws.name} (one of: {', '.join(s[0] for s in jobs)})")


def train_steps(ws: Workspace, job: str | None = None) -> list[Step]:
    steps: list[Step] = []
    what = {"amlCompute": "compute", "environment": "environment", "commandComponent": "component", "data": "data"}
    for kind in TRAIN_KINDS:
        for path, _, data in ws.of_kind(kind):
            label = f"{what[kind]} {data.get('name', path)}" + (f":{data['version']}" if "version" in data else "")
            steps.append(
                Step(
                    f"train.{what[kind]}-{data.get('name', Path(path).stem)}",
                    "train",
                    (*_az(kind), "-f", path, *ws.scope()),
                    f"create {label} (skipped when it exists)",
                    skip_if=_probe(ws, kind, data),
                    spec=path,
                )
            )
    path, kind, _ = _job_spec(ws, job)
    steps += [
        Step(
            "train.job-submit",
            "train",
            (*_az(kind), "-f", path, *ws.scope(), "--query", "name", "-o", "tsv"),
            f"submit {path}; its name is needed to register the model",
            captures=JOB_NAME_VAR,
            spec=path,
        ),
        Step(
            "train.job-stream",
            "train",
            ("az", "ml", "job", "stream", "--name", "${JOB_NAME}", *ws.scope()),
            "follow the job's logs until it ends",
        ),
        Step(
            "train.job-status",
            "train",
            ("az", "ml", "job", "show", "--name", "${JOB_NAME}", *ws.scope(), "--query", "status", "-o", "tsv"),
            "the job must have Completed",
            captures="JOB_STATUS",
            expect="Completed",
        ),
    ]
    return steps


def register_steps(ws: Workspace) -> list[Step]:
    """`-f` the validated model spec and override only its `path` with the submitted job's output: the job name is
    the one value not known at render time (its spec carries the placeholder JOB_NAME)."""
    from tools.render.derived import JOB_NAME_PLACEHOLDER

    steps = []
    for path, _, data in ws.of_kind("model"):
        model_path = str(data.get("path", ""))
        if f"/{JOB_NAME_PLACEHOLDER}/" not in model_path:
            continue  # a model spec not fed by the job
        steps.append(
            Step(
                f"register.model-{data.get('name')}",
                "register",
                (
                    "az",
                    "ml",
                    "model",
                    "create",
                    "-f",
                    path,
                    "--path",
                    model_path.replace(f"/{JOB_NAME_PLACEHOLDER}/", "/${JOB_NAME}/"),
                    *ws.scope(),
                ),
                f"register {data.get('name')}:{data.get('version')} from the job's output",
                spec=path,
            )
        )
    return steps


def _endpoint(ws: Workspace) -> tuple[str, dict[str, Any]]:
    endpoints = ws.of_kind("managedOnlineEndpoint")
    if not endpoints:
        raise UserError(f"{ws.name}: the render has no online endpoint spec")
    return endpoints[0][0], endpoints[0][2]


def get_logs_commands(ws: Workspace, deployment: str, endpoint: str) -> tuple[tuple[str, ...], ...]:
    base = ("az", "ml", "online-deployment", "get-logs", "--name", deployment, "--endpoint-name", endpoint)
    return (
        (*base, *ws.scope(), "--container", "inference-server", "--lines", "200"),
        (*base, *ws.scope(), "--container", "storage-initializer", "--lines", "200"),
    )


def deploy_steps(ws: Workspace) -> list[Step]:
    path, data = _endpoint(ws)
    steps = [
        Step(
            f"deploy.endpoint-{data['name']}",
            "deploy",
            (*_az("managedOnlineEndpoint"), "-f", path, *ws.scope()),
            f"create endpoint {data['name']} (skipped when it exists)",
            skip_if=_probe(ws, "managedOnlineEndpoint", data),
            spec=path,
        )
    ]
    for dpath, _, ddata in ws.of_kind("managedOnlineDeployment"):
        endpoint = ddata.get("endpoint_name", data["name"])
        steps.append(
            Step(
                f"deploy.deployment-{ddata.get('name')}",
                "deploy",
                (*_az("managedOnlineDeployment"), "-f", dpath, *ws.scope(), "--all-traffic"),
                f"create deployment {ddata.get('name')} on {endpoint} serving {ddata.get('model')}, all traffic",
                spec=dpath,
                on_failure=get_logs_commands(ws, str(ddata.get("name")), str(endpoint)),
            )
        )
    return steps


def smoke_steps(ws: Workspace) -> list[Step]:
    _, data = _endpoint(ws)
    return [
        Step(
            "smoke.invoke",
            "smoke",
            (
                "az",
                "ml",
                "online-endpoint",
                "invoke",
                "--name",
                data["name"],
                "--request-file",
                SAMPLE_REQUEST,
                *ws.scope(),
            ),
            f"score the sample request (written by `{SAMPLE_REQUEST_HINT}`)",
            needs_files=(SAMPLE_REQUEST,),
        )
    ]


def teardown_steps(ws: Workspace) -> list[Step]:
    _, data = _endpoint(ws)
    return [
        Step(
            "teardown.endpoint-delete",
            "teardown",
            ("az", "ml", "online-endpoint", "delete", "--name", data["name"], *ws.scope(), "--yes"),
            f"delete endpoint {data['name']} and its deployments (endpoints bill while they exist)",
            destructive=True,
        )
    ]


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
        "register": register_steps,
        "deploy": deploy_steps,
        "smoke": smoke_steps,
        "teardown": teardown_steps,
    }
    return [step for stage in stages for step in builders[stage](ws)]


def free_variables(steps: list[Step]) -> list[str]:
    """Variables read before any step of the plan captures them (must come from the caller, e.g. JOB_NAME)."""
    captured: set[str] = set()
    free: list[str] = []
    for step in steps:
        free += [v for v in step.variables() if v not in captured and v not in free]
        if step.captures:
            captured.add(step.captures)
    return free


# ------------------------------------------------------------------------------------------------ workspace loading


def load_workspace(name: str, root: Path = REPO_ROOT, layers: str = "ABCD") -> Workspace:
    """Render and validate ``name``; refuse (UserError) on validation errors or a stale committed render."""
    from tools.core.yamlio import plain
    from tools.render.engine import check_rendered, default_out_dir, render_workspace
    from tools.render.values import DEFAULT_WORKSPACE, load_values
    from tools.validate.cli import validate_workspace
    from tools.validate.document import parse_spec
    from tools.validate.findings import ERROR, to_text

    values = load_values(name, root).data
    out_dir = default_out_dir(name, root)
    if name == DEFAULT_WORKSPACE:
        stale = check_rendered(render_workspace(name, out_dir, root), out_dir, root)
        if stale:
            print("\n".join(stale), file=sys.stderr)
            raise UserError(f"{name}: committed specs differ from the templates; run `python -m tools render`")
    report = validate_workspace(name, layers, root)  # renders non-default workspaces into build/<name>/
    errors = [f for f in report.findings if f.severity == ERROR]
    if errors:
        print(to_text(errors), file=sys.stderr)
        raise UserError(
            f"{name}: {len(errors)} validation errors; refusing to plan (python -m tools validate --workspace {name})"
        )
    specs = []
    for spec in report.specs:
        parsed = spec if spec.data is not None else parse_spec(spec.path, spec.display)
        rel = Path(os.path.relpath(parsed.path, root)).as_posix()
        specs.append((rel, parsed.kind or "", plain(parsed.data) if parsed.data is not None else {}))
    ws = values["workspace"]
    return Workspace(
        name=name,
        subscription=str(ws["subscription_id"]),
        resource_group=str(ws["resource_group"]),
        workspace=str(ws["name"]),
        location=ws.get("location"),
        identity=str(values["identity"]["name"]),
        out_dir=Path(os.path.relpath(out_dir, root)).as_posix(),
        specs=tuple(specs),
    )


# ------------------------------------------------------------------------------------------------ printing


def shell_word(word: str) -> str:
    """Quote one argument for POSIX sh, keeping ``${VAR}`` references live (double quotes)."""
    if not VARIABLE.search(word):
        return shlex.quote(word)
    if re.fullmatch(r"[A-Za-z0-9_./:@=${}-]+", word):
        return f'"{word}"'
    escaped = re.sub(r'(["\\`])', r"\\\1", word)
    return f'"{escaped}"'


def shell_command(argv: tuple[str, ...] | list[str]) -> str:
    return " ".join(shell_word(w) for w in argv)


def shell_line(step: Step) -> str:
    """One step as a shell line: captures become VAR=$(...), probes become `probe >/dev/null 2>&1 || ...`."""
    command = shell_command(step.argv)
    if step.captures:
        line = f"{step.captures}=$({command})"
        if step.expect is not None:
            line += f'\ntest "${step.captures}" = {shlex.quote(step.expect)}'
        return line
    if step.skip_if:
        return f"{shell_command(step.skip_if)} >/dev/null 2>&1 || \\\n  {command}"
    return command


def format_plan(ws: Workspace, stages: list[str], steps: list[Step], invocation: str) -> str:
    lines = [
        "#!/usr/bin/env bash",
        f"# Plan for workspace {ws.name} ({ws.workspace} in {ws.resource_group}), stages: {', '.join(stages)}.",
        f"# Generated by `{invocation}` from validated specs; run from the repo root.",
        "set -euo pipefail",
    ]
    for var in free_variables(steps):
        hint = "the fine-tune job's name (az ml job list -o table)" if var == JOB_NAME_VAR else "a value"
        lines.append(f': "${{{var}:?set {var} to {hint}}}"')
    current = None
    for step in steps:
        if step.stage != current:
            current = step.stage
            lines += ["", f"# == {current} =="]
        lines.append(f"# {step.name}: {step.description}" + ("  [destructive]" if step.destructive else ""))
        for needed in step.needs_files:
            hint = f": {SAMPLE_REQUEST_HINT}" if needed == SAMPLE_REQUEST else ""
            lines.append(f"#   needs {needed}{hint}")
        lines.append(shell_line(step))
        for hint in step.on_failure:
            lines.append(f"#   if it fails: {shell_command(hint)}")
    return "\n".join(lines) + "\n"


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `plan` and `apply` share."""
    parser.add_argument("--workspace", metavar="NAME", default=None, help="workspace values name (default: dev)")
    parser.add_argument(
        "--stage",
        default="all",
        metavar="STAGE[,STAGE]",
        help=f"all (default) or a comma-separated list of: {', '.join(STAGES)}",
    )
    parser.add_argument("--job", metavar="PATH", help=f"job spec to submit (default: jobs/{DEFAULT_JOB})")
    parser.add_argument("--layers", default="ABCD", help="validation layers run before planning (default ABCD)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repo root (default: this checkout)")


def plan_from_args(args: argparse.Namespace) -> tuple[str, list[str], Workspace, list[Step]]:
    """Workspace name, stages, the loaded (rendered, validated) workspace and its plan, from the shared options."""
    from tools.render.values import DEFAULT_WORKSPACE

    name = args.workspace or DEFAULT_WORKSPACE
    stages = parse_stages(args.stage)
    ws = load_workspace(name, args.root.resolve(), args.layers.upper())
    return name, stages, ws, build_plan(ws, stages, args.job)


add_arguments = add_plan_arguments


def run(args: argparse.Namespace) -> int:
    name, stages, ws, steps = plan_from_args(args)
    invocation = f"python -m tools plan --workspace {name} --stage {args.stage}"
    sys.stdout.write(format_plan(ws, stages, steps, invocation))
    return 0
