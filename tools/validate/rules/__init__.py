"""Layer D, the repo's own rules: what azure-ai-ml and the published schemas let through but Azure (or a reviewer)
would reject later. One module per concern, each exposing ``check(spec, emit, context)``:

uris       azureml: references are well-formed
bindings   ``${{...}}`` data bindings resolve
contracts  pipeline steps match their component's interface (committed registry contracts, local components)
names      Azure's naming rules
ranges     numbers in Azure's ranges
catalog    SKU allow-lists, GPU counts, retired models, unknown VM sizes
files      local paths exist
policy     everything ``policy: prod`` means
kinds      the few checks that belong to one kind only (identities, a model's path, version types)
open_keys  near-miss keys where the SDK takes any key (a component's ``resources``)

Pure functions over parsed specs; ``spec_from_dict`` (tools.validate.document) builds a Spec from a literal dict
for tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tools.validate.document import Spec
from tools.validate.findings import ERROR, Finding

Emit = Callable[..., None]  # emit(key_path, message, severity=ERROR, rule="")


@dataclass
class RuleContext:
    """What rules may look up across files: every spec being validated together, and the workspace policy."""

    specs: list[Spec]
    policy: str = "default"  # "prod" adds the promotion policy
    computes: dict[str, str] = field(default_factory=dict)  # cluster name -> VM size
    registered_models: dict[str, str] = field(default_factory=dict)  # model name -> base model URI (tag)

    def __post_init__(self) -> None:
        for spec in self.specs:
            data = spec.data or {}
            if spec.kind == "amlCompute" and isinstance(data.get("name"), str):
                self.computes[data["name"]] = str(data.get("size", ""))
            if spec.kind == "model" and isinstance(data.get("name"), str):
                tags = data.get("tags") or {}
                if isinstance(tags, dict) and isinstance(tags.get("base_model"), str):
                    self.registered_models[data["name"]] = tags["base_model"]


def _concerns() -> list[Callable[[Spec, Emit, RuleContext], None]]:
    from tools.validate.rules import bindings, catalog, contracts, files, kinds, names, open_keys, policy, ranges, uris

    return [uris.check, bindings.check, contracts.check, names.check, ranges.check, catalog.check, files.check,
            policy.check, kinds.check, open_keys.check]  # fmt: skip


def check_spec(spec: Spec, context: RuleContext) -> list[Finding]:
    """Every concern's findings on one spec."""
    findings: list[Finding] = []
    if spec.data is None or spec.kind is None or spec.skipped or spec.placeholders:
        return findings

    def emit(key_path: tuple, message: str, severity: str = ERROR, rule: str = "") -> None:
        findings.append(spec.finding(key_path, message, "D", severity, rule))

    for check in _concerns():
        check(spec, emit, context)
    return findings


def check_specs(context: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for spec in context.specs:
        findings.extend(check_spec(spec, context))
    return findings
