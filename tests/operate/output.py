"""Reading what `plan` and `apply` print: a step's line (`[n/N] name: outcome (duration)`), a captured value, and a
printed plan with its continuation lines joined (commands after a backslash, comments after `#     `)."""

from __future__ import annotations

import re

STEP_LINE = re.compile(r"^\[\s*(\d+)/(\d+)\] (\S+): (.*) \((\d+(?:\.\d)? s|\d+ min \d\d s)\)$")


def outcomes(out: str) -> dict[str, str]:
    """Step name -> what apply said it did."""
    return {m[3]: m[4] for m in (STEP_LINE.match(line) for line in out.splitlines()) if m}


def captured(out: str, variable: str) -> str:
    """The value a step captured (its line says VAR=value)."""
    values = [o.split("=", 1)[1] for o in outcomes(out).values() if o.startswith(f"{variable}=")]
    assert len(values) == 1, out
    return values[0]


def joined(plan: str) -> str:
    """The printed plan with every continuation joined back into one line."""
    plan = re.sub(r" \\\n +", " ", plan)
    return re.sub(r"\n *#     ", " ", plan)


def overlong(plan: str, width: int = 120) -> list[str]:
    """Printed lines past ``width`` that could have been split (a single word longer than that, an ARM id or a
    URL, stays whole)."""
    return [line for line in plan.splitlines()
            if len(line) > width and len(line.strip().lstrip("#").rstrip("\\").split()) > 1]  # fmt: skip
