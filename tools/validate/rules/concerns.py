"""Layer D's dispatcher: every concern, in order, over one spec or all of them."""

from __future__ import annotations

from tools.validate.document import Spec
from tools.validate.findings import ERROR, Finding
from tools.validate.rules import (
    bindings,
    catalog,
    contracts,
    files,
    gate,
    immutable,
    kinds,
    names,
    open_keys,
    policy,
    ranges,
    uris,
)
from tools.validate.rules.support import Check, RuleContext

CONCERNS: tuple[Check, ...] = (uris.check, bindings.check, contracts.check, names.check, ranges.check, catalog.check,
                               files.check, policy.check, kinds.check, open_keys.check, immutable.check,
                               gate.check)  # fmt: skip


def check_spec(spec: Spec, context: RuleContext) -> list[Finding]:
    """Every concern's findings on one spec."""
    findings: list[Finding] = []
    if spec.data is None or spec.kind is None or spec.skipped or spec.placeholders:
        return findings

    def emit(key_path: tuple, message: str, severity: str = ERROR, rule: str = "") -> None:
        findings.append(spec.finding(key_path, message, "D", severity, rule))

    for check in CONCERNS:
        check(spec, emit, context)
    return findings


def check_specs(context: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for spec in context.specs:
        findings.extend(check_spec(spec, context))
    return findings
