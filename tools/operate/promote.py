"""`python -m tools promote`: promote one model version from a source workspace to a target workspace through the
registry named in the target's values, then point the target's deployment at it — a reviewable Git change.

  1. `az ml model show` — the version must exist in the source workspace,
  2. `az ml model share ... --registry-name R` — copy it into the registry, keeping lineage (skipped when the
     registry already has that version),
  3. rewrite `workspaces/<target>.yaml` so `deployment.model` = {registry, name, version} (ruamel.yaml round trip:
     comments and key order stay), re-render the target and print the diff of its values and its specs,
  4. validate the target (its own policy: prod pins everything and serves registry models).

The `az` commands (1, 2) are printed, not run, unless --execute; the local rewrite (3, 4) always happens, so a
promotion can be prepared as a pull request before the share runs in CI. Running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from tools.core.errors import CloudRefused, UserError
from tools.core.files import atomic_write_text
from tools.core.repo import active
from tools.core.text import counted
from tools.evaluate.report import markdown
from tools.operate import commands, evaluation
from tools.operate.az import Az, run_log_path
from tools.operate.diff import unified_renders
from tools.operate.steps import Step, shell_command, shell_line
from tools.operate.workspace import validate_rendered
from tools.render.engine import render
from tools.render.values import load_values
from tools.validate.findings import to_text

_MODEL_REF = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_-]*):(?P<version>[A-Za-z0-9._-]+)$")


def parse_model_ref(text: str) -> tuple[str, str]:
    match = _MODEL_REF.match(text)
    if not match:
        raise UserError(f"--model {text}: expected NAME:VERSION (e.g. phi4-ultrachat:3)")
    return match["name"], match["version"]


def _scope(ws: dict[str, Any]) -> tuple[str, ...]:
    return ("-g", str(ws["resource_group"]), "-w", str(ws["name"]), "--subscription", str(ws["subscription_id"]))


def promotion_steps(source: dict[str, Any], registry: str, name: str, version: str) -> list[Step]:
    """The `az` steps of a promotion (pure): show in the source workspace, then share into the registry."""
    scope = _scope(source["workspace"])
    return [
        Step("promote.model-show", "promote", commands.model_show(name, version, scope),
             f"{name}:{version} must exist in workspace {source['workspace']['name']}"),
        Step("promote.model-share", "promote", commands.model_share(name, version, registry, scope),
             f"copy {name}:{version} into registry {registry} (skipped when the registry has it)",
             show=commands.model_show_in_registry(name, version, registry)),
    ]  # fmt: skip


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def set_values_key(text: str, key_path: tuple[str, ...], value: Any) -> str:
    """The values text with ``key_path`` set to ``value`` (ruamel round trip: comments, order and layout stay)."""
    return _set_keys(text, key_path[:-1], {key_path[-1]: value})


def _set_keys(text: str, parent: tuple[str, ...], pinned: dict[str, Any]) -> str:
    yaml = _yaml()
    doc = yaml.load(text)
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise UserError("values file: expected a mapping at the top level")
    node = doc
    for key in parent:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = CommentedMap()
        node = child
    for key, value in pinned.items():
        if node.get(key) != value or type(node.get(key)) is not type(value):
            node[key] = value
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    return buffer.getvalue()


def rewrite_values(text: str, registry: str, name: str, version: str) -> str:
    """The values text with `deployment.model` = {registry, name, version}; everything else byte for byte."""
    pinned: dict[str, Any] = {
        "registry": registry,
        "name": name,
        "version": int(version) if version.isdigit() else version,
    }
    return _set_keys(text, ("deployment", "model"), pinned)


def _shown(az: Az, step: Step) -> dict[str, Any]:
    """The version as the source workspace holds it (`az ml model show -o json`: its tags carry the verdict)."""
    result = az.call([*step.argv, "-o", "json"])
    if result.code != 0:
        detail = f": {result.said()}" if result.said() else ""
        raise UserError(
            f"{step.description.split(' must')[0]} not found ({shell_command(step.argv)} exited "
            f"{result.code}){detail}"
        )
    try:
        data = json.loads(result.stdout or "{}")
    except ValueError:
        raise CloudRefused(f"{shell_command(step.argv)}: az printed no JSON") from None
    return data if isinstance(data, dict) else {}


def _gate(az: Az, step: Step, model: dict[str, Any], args: argparse.Namespace, scope: tuple[str, ...]) -> None:
    """The evaluation gate (``tools.operate.evaluation``): a pass, or an override recorded on the version."""
    name, version = parse_model_ref(args.model)
    verdict = evaluation.check_gate(az, model, args.model, args.source, args.override_gate)
    if verdict in (evaluation.PASS, evaluation.OVERRIDDEN):  # an override is not needed, nor recorded
        print(f"==> {step.name}: found, {evaluation.VERDICT_TAG}={verdict} (against "
              f"{(model.get('tags') or {}).get(evaluation.CHAMPION_TAG, '?')})", flush=True)  # fmt: skip
        return
    evaluation.record_override(az, name, version, args.override_gate, scope)
    print(f"==> {step.name}: found, {evaluation.VERDICT_TAG}={verdict or 'missing'}: promoted anyway "
          f"(--override-gate; recorded {evaluation.VERDICT_TAG}={evaluation.OVERRIDDEN}, "
          f"{evaluation.OVERRIDE_TAG}={args.override_gate!r})", flush=True)  # fmt: skip


def show_evaluation(az: Az, model: dict[str, Any], ref: str, scope: tuple[str, ...]) -> int:
    """--show-evaluation: the version's evaluation table as Markdown (the report its eval_report tag names); exit 1
    when the gate would refuse it."""
    tags = model.get("tags") or {}
    uri = str(tags.get(evaluation.REPORT_TAG) or "")
    job = uri.split("/")[3] if uri.startswith("azureml://jobs/") and uri.count("/") >= 5 else ""
    verdict = tags.get(evaluation.VERDICT_TAG) or "missing"
    print(f"### Evaluation of {ref}: {evaluation.VERDICT_TAG}={verdict}\n")
    if tags.get(evaluation.OVERRIDE_TAG):
        print(f"Promoted with --override-gate: {tags[evaluation.OVERRIDE_TAG]}\n")
    if job:
        download = f"{active().relative(active().runs_dir)}/promote/{job}"
        az.run(commands.job_download_output(job, evaluation.REPORT_OUTPUT, download, scope), "download the report")
        print(markdown(evaluation.read_verdict(active().root, download)))
    else:
        print(f"No evaluation report: the version has no {evaluation.REPORT_TAG} tag.")
    return 0 if verdict in (evaluation.PASS, evaluation.OVERRIDDEN) else 1


def _share(az: Az, step: Step) -> None:
    """Share unless the registry holds the version already (registry versions are immutable too)."""
    print(f"==> {step.name}: {step.description}", flush=True)
    assert step.show is not None
    if az.show(step.show) is not None:
        print("    unchanged (the registry has this version)", flush=True)
        return
    az.run(step.argv, f"step {step.name}")
    print("    created", flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="NAME:VERSION", help="the model version to promote")
    parser.add_argument("--from", dest="source", default="dev", metavar="WS", help="source workspace (default dev)")
    parser.add_argument("--to", dest="target", default="prod", metavar="WS", help="target workspace (default prod)")
    parser.add_argument("--execute", action="store_true", help="run the az commands (default: print them)")
    parser.add_argument("--override-gate", metavar="REASON", default=None,
                        help="promote a version whose evaluation verdict is missing or fail; the reason is recorded")
    parser.add_argument("--show-evaluation", action="store_true",
                        help="print the version's evaluation table (Markdown) and exit: 0 when the gate passes")
    parser.add_argument("--layers", default="ABCD", help="validation layers for the target (default ABCD)")
    parser.add_argument("--root", type=Path, default=None, help="repo root (default: this checkout)")


def run(args: argparse.Namespace) -> int:
    root = active().root
    name, version = parse_model_ref(args.model)
    if args.source == args.target:
        raise UserError(f"--from and --to are both {args.source}: promotion goes from one workspace to another")
    source = load_values(args.source, root).data
    target = load_values(args.target, root).data
    registry = str(target["registry"]["name"])
    steps = promotion_steps(source, registry, name, version)
    if args.override_gate is not None and not args.override_gate.strip():
        raise UserError("--override-gate needs a reason (it is recorded on the model version)")
    scope = _scope(source["workspace"])
    if args.execute or args.show_evaluation:
        Az.require()
        az = Az(root, run_log_path(active().runs_dir, f"promote-{args.target}"))
        model = _shown(az, steps[0])
        if args.show_evaluation:
            return show_evaluation(az, model, args.model, scope)
        _gate(az, steps[0], model, args, scope)
        _share(az, steps[1])
    else:
        print(f"# dry run: the az commands of the promotion (run them with --execute) from {root}")
        print(f"# --execute first refuses {args.model} unless its tag {evaluation.VERDICT_TAG} is "
              f"{evaluation.PASS} (or --override-gate REASON)")  # fmt: skip
        for step in steps:
            print(f"# {step.name}: {step.description}")
            print(shell_line(step))

    values_path = active().workspaces_dir / f"{args.target}.yaml"
    values_rel = Path(os.path.relpath(values_path, root)).as_posix()
    old_text = values_path.read_text()
    new_text = rewrite_values(old_text, registry, name, version)
    uri = f"azureml://registries/{registry}/models/{name}/versions/{version}"
    before = render(args.target, root)
    out_dir = before.out_dir
    prefix = f"{Path(os.path.relpath(out_dir, root)).as_posix()}/" if out_dir != root else ""
    if new_text == old_text:
        print(f"{values_rel}: {args.target} already deploys {uri}: no change")
        after = before
    else:
        atomic_write_text(values_path, new_text)
        try:
            after = render(args.target, root)
        except UserError:
            atomic_write_text(values_path, old_text)
            raise
        print(unified_renders({values_rel: old_text}, {values_rel: new_text}, "a", "b"), end="")
        print(unified_renders({prefix + f.relpath: f.text for f in before.files},
                              {prefix + f.relpath: f.text for f in after.files}, "a", "b"), end="")  # fmt: skip
        print(f"{values_rel}: {args.target} now deploys {uri}")
    after.write()
    _, errors = validate_rendered(after, root, args.layers.upper())
    if errors:
        print(to_text(errors), file=sys.stderr)
        print(f"promote: {args.target} does not validate ({counted(len(errors), 'error')})", file=sys.stderr)
        return 1
    policy = target.get("policy", "default")
    print(
        f"promote: {args.target} validates (policy {policy}); next: "
        f"python -m tools apply --workspace {args.target} --stage deploy,smoke --execute"
    )
    return 0
