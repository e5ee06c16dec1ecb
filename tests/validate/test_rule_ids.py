"""Rule ids are data (schemas/rules.yaml): every id the code emits is there, every id there is emitted somewhere,
and docs/rules.md is what `python -m tools rules` generates from it."""

from __future__ import annotations

import ast

from tools.core.repo import REPO_ROOT
from tools.schemas.rules_page import render_page
from tools.validate.findings import INTERNAL, LAYERS
from tools.validate.rule_ids import layer_defaults, rule_table

RULE_POSITION = {"emit": 3, "finding": 4, "Finding": 6}  # where a call passes the rule id positionally


def emitted_ids() -> dict[str, str]:
    """Every literal rule id passed in tools/ (``rule="x"``, or positionally to emit/finding/Finding) -> a file."""
    found: dict[str, str] = {}
    for path in sorted((REPO_ROOT / "tools").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            values = [kw.value for kw in node.keywords if kw.arg == "rule"]
            if name in RULE_POSITION and len(node.args) > RULE_POSITION[name]:
                values.append(node.args[RULE_POSITION[name]])
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
                    found.setdefault(value.value, str(path.relative_to(REPO_ROOT)))
    return found


def test_every_emitted_id_is_in_the_table_and_every_entry_is_emitted() -> None:
    table = rule_table()
    emitted = set(emitted_ids()) | {INTERNAL} | set(layer_defaults().values())
    unknown = {rule: where for rule, where in emitted_ids().items() if rule not in table}
    assert unknown == {}, f"add these ids to schemas/rules.yaml: {unknown}"
    assert set(table) - emitted == set(), "ids in schemas/rules.yaml that no code emits"


def test_every_entry_names_a_layer_and_a_public_help_page() -> None:
    for rule in rule_table().values():
        assert rule.layer in LAYERS, rule
        assert rule.help.startswith("https://learn.microsoft.com/"), rule
        assert rule.summary and "\n" not in rule.summary, rule
    assert set(layer_defaults()) <= set(LAYERS)


def test_every_rule_call_in_layer_d_names_its_rule() -> None:
    """An emit without an id would reach SARIF as an anonymous rule."""
    missing = []
    for path in sorted((REPO_ROOT / "tools" / "validate" / "rules").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            named = isinstance(node, ast.Call) and (len(node.args) > 3 or any(kw.arg == "rule" for kw in node.keywords))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "emit" and not named:
                missing.append(f"{path.name}:{node.lineno}")
    assert missing == []


def test_rules_page_is_current() -> None:
    assert (REPO_ROOT / "docs" / "rules.md").read_text() == render_page(rule_table(), layer_defaults())
