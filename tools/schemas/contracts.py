"""`python -m tools contracts add SPEC`: record a registry component's interface contract in schemas/contracts/
from its published source, never by hand.

SPEC is the component's published spec (an azureml-assets `spec.yaml`) or the JSON that
`az ml component show --registry-name azureml --name N --version V -o json` prints. The contract keeps what layer
D checks a pipeline step against: name, registry, version, type, and for each input its type, optional,
default, enum (as strings, the way Azure compares them) and min/max; for each output its type. Inputs keep the
component's order. Exit 1 when SPEC is not a component spec (one line naming the file and the missing key).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from tools.core.errors import UserError
from tools.core.files import atomic_write_text
from tools.core.repo import active
from tools.core.yamlio import YamlProblem, load_lined, plain, read_text

INPUT_FACTS = ("type", "optional", "default", "enum", "min", "max")


def read_component(path: Path) -> dict[str, Any]:
    """The component mapping of a spec.yaml or of `az ml component show -o json` output."""
    try:
        text = read_text(path)
    except OSError as error:
        raise UserError(f"{path}: cannot read: {error.strerror or error}") from None
    except YamlProblem as problem:
        raise UserError(f"{path}:{problem.line}: {problem.message}") from None
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else plain(load_lined(text))
    except (ValueError, YamlProblem) as error:
        raise UserError(f"{path}: not YAML or JSON: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a component mapping at the top level")
    for key in ("name", "version", "inputs"):
        if key not in data:
            raise UserError(f"{path}: {key}: missing (expected a published component spec)")
    return data


def contract_of(data: dict[str, Any], registry: str) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for name, facts in (data.get("inputs") or {}).items():
        facts = facts if isinstance(facts, dict) else {"type": "string", "default": facts}
        entry = {key: facts[key] for key in INPUT_FACTS if key in facts}
        entry.setdefault("type", "string")
        entry.setdefault("optional", False)
        if "enum" in entry:
            entry["enum"] = [str(value).lower() if isinstance(value, bool) else str(value) for value in entry["enum"]]
        inputs[str(name)] = entry
    outputs = {str(name): {"type": (facts or {}).get("type", "uri_folder") if isinstance(facts, dict) else "uri_folder"}
               for name, facts in (data.get("outputs") or {}).items()}  # fmt: skip
    return {"name": data["name"], "registry": registry, "version": str(data["version"]),
            "type": data.get("type", "command"), "inputs": inputs, "outputs": outputs}  # fmt: skip


def add(path: Path, registry: str) -> Path:
    contract = contract_of(read_component(path), registry)
    target = active().contracts_dir / f"{contract['name']}.yaml"
    header = (f"# Interface contract of the {registry} registry component `{contract['name']}`, read by "
              f"`python -m tools contracts add` from {path.name} (version {contract['version']}).\n"
              "# Layer D of `python -m tools validate` checks every step that uses it. Regenerate; do not edit.\n")
    atomic_write_text(target, header + yaml.safe_dump(contract, sort_keys=False, allow_unicode=True))
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    add_parser = sub.add_parser("add", help="record a component's contract from its published spec or `az` JSON")
    add_parser.add_argument("spec", type=Path, metavar="SPEC")
    add_parser.add_argument("--registry", default="azureml", help="the registry that publishes it (default azureml)")


def run(args: argparse.Namespace) -> int:
    target = add(args.spec, args.registry)
    print(f"wrote {active().relative(target)}")
    return 0
