"""Rule ids as data: ``schemas/rules.yaml`` says, for every id a finding can carry, its layer, one line on what it
checks and the public page of the Azure rule it enforces. SARIF (``findings.to_sarif``) and docs/rules.md are built
from it; a finding with no id takes its layer's default (``layers:``)."""

from __future__ import annotations

from dataclasses import dataclass

from tools.core.errors import UserError
from tools.core.repo import active


@dataclass(frozen=True)
class Rule:
    id: str
    layer: str
    summary: str
    help: str


def rule_table() -> dict[str, Rule]:
    """Every rule, by id, in the file's order; a malformed entry is one line naming the file and the id."""
    repo = active()
    table = repo.rules_table()
    rules: dict[str, Rule] = {}
    for rule_id, facts in (table.get("rules") or {}).items():
        if not isinstance(facts, dict) or not all(isinstance(facts.get(k), str) for k in ("layer", "summary", "help")):
            raise UserError(f"{repo.relative(repo.rules_file)}: rules.{rule_id}: expected layer, summary and help "
                            "(strings)")  # fmt: skip
        rules[str(rule_id)] = Rule(str(rule_id), facts["layer"], facts["summary"], facts["help"])
    return rules


def layer_defaults() -> dict[str, str]:
    """Layer -> the id of its findings that carry none."""
    return {str(layer): str(rule_id) for layer, rule_id in (active().rules_table().get("layers") or {}).items()}
