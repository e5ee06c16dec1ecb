"""What a pipeline step's component declares: a registry component's committed contract (``schemas/contracts/``),
a local component spec read into the same shape, or nothing (a Prompt flow step, an unknown reference)."""

from __future__ import annotations

from pathlib import Path

from tools.core.repo import contracts
from tools.core.yamlio import YamlProblem, load_lined
from tools.validate.document import Spec
from tools.validate.references import REGISTRY_ASSET, REGISTRY_UNVERSIONED


def step_contract(spec: Spec, step: dict) -> tuple[dict | None, str]:
    """The interface of a step's component and where it came from: ("local"|"registry"|"none"|"unknown")."""
    component = step.get("component")
    if isinstance(component, str) and not component.startswith("azureml:"):
        if is_flow(spec.path.parent / component):
            return None, "none"  # a Prompt flow as a step: its inputs are the flow's, checked by `pf`
        contract = local_component_contract(spec.path.parent / component)
        return contract, "local" if contract else "unknown"
    match = (REGISTRY_ASSET.match(component) or REGISTRY_UNVERSIONED.match(component)) if isinstance(component, str) \
        else None
    if not match or match["noun"] != "components":
        return None, "none"
    contract = contracts().get(match["name"])
    return contract, "registry" if contract else "unknown"


def is_flow(path: Path) -> bool:
    """A Prompt flow used as a pipeline step (``component: ./flow.dag.yaml`` or a flow folder): Azure ML runs it as
    a flow component (https://learn.microsoft.com/azure/machine-learning/prompt-flow/how-to-use-pipelines-with-
    prompt-flow); its interface is the flow's inputs, not a component spec's."""
    try:
        if path.is_dir():
            return any((path / name).exists() for name in ("flow.dag.yaml", "flow.dag.yml", "flow.flex.yaml"))
    except (OSError, ValueError):  # a name too long for the file system: rules.files names the key
        return False
    return path.name.startswith("flow.") or path.name in ("flow.dag.yaml", "flow.dag.yml")


def local_component_contract(path: Path) -> dict | None:
    """A local component spec's interface in the shape of a committed contract (inputs, outputs)."""
    try:
        data = load_lined(path.read_text())
    except (OSError, UnicodeDecodeError, YamlProblem):
        return None
    if not isinstance(data, dict):
        return None
    inputs = {}
    for name, facts in (data.get("inputs") or {}).items() if isinstance(data.get("inputs"), dict) else []:
        facts = facts if isinstance(facts, dict) else {}
        entry = {"type": facts.get("type", "string"), "optional": bool(facts.get("optional", False))}
        if "default" in facts:
            entry["default"] = facts["default"]
        if isinstance(facts.get("enum"), list):
            entry["enum"] = [str(e) for e in facts["enum"]]
        if "min" in facts:
            entry["min"] = facts["min"]
        inputs[name] = entry
    raw_outputs = data.get("outputs") if isinstance(data.get("outputs"), dict) else {}
    outputs = {name: {"type": (facts or {}).get("type") if isinstance(facts, dict) else None}
               for name, facts in raw_outputs.items()}  # fmt: skip
    return {"name": data.get("name", path.name), "version": data.get("version"), "inputs": inputs, "outputs": outputs}
