"""The decision: per metric, an absolute floor and a non-inferiority margin against the champion, judged on the
paired bootstrap interval of candidate - champion; and a minimum number of gate rows.

For a metric where higher is better, the candidate passes when its value is at least the floor and the interval's
lower end is at least ``-margin`` (we are 95 % sure it is not worse by more than the margin); where lower is better,
when its value is at most the floor and the interval's upper end is at most ``+margin``. A metric with neither floor
nor margin is reported, never decisive. The policy is the ``evaluation:`` values section (schemas/values.schema.json).
"""

from __future__ import annotations

from typing import Any

from .metrics import METRICS
from .report import fmt, fmt_ci

POLICY_KEYS = ("direction", "floor", "margin")


class PolicyError(ValueError):
    """A policy that cannot be applied; one line."""


def check_policy(policy: Any) -> dict[str, Any]:
    """``{"min_rows": int, "metrics": {name: {direction, floor, margin}}}``, checked; unknown metric names fail."""
    if not isinstance(policy, dict):
        raise PolicyError("evaluation policy: expected a mapping with min_rows and metrics")
    min_rows = policy.get("min_rows", 1)
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 1:
        raise PolicyError(f"evaluation policy: min_rows: expected an integer >= 1, got {min_rows!r}")
    metrics = policy.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise PolicyError("evaluation policy: metrics: expected a mapping of metric name -> rule")
    clean: dict[str, dict[str, Any]] = {}
    for name, rule in metrics.items():
        if name not in METRICS:
            raise PolicyError(f"evaluation policy: metrics.{name}: unknown metric; known: {', '.join(METRICS)}")
        rule = rule or {}
        if not isinstance(rule, dict) or set(rule) - set(POLICY_KEYS):
            raise PolicyError(f"evaluation policy: metrics.{name}: expected keys among {', '.join(POLICY_KEYS)}")
        direction = rule.get("direction", METRICS[name].direction)
        if direction not in ("higher", "lower"):
            raise PolicyError(f"evaluation policy: metrics.{name}.direction: expected higher or lower")
        for key in ("floor", "margin"):
            value = rule.get(key)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
                raise PolicyError(f"evaluation policy: metrics.{name}.{key}: expected a number or null")
        if rule.get("margin") is not None and rule["margin"] < 0:
            raise PolicyError(f"evaluation policy: metrics.{name}.margin: expected a number >= 0")
        clean[name] = {"direction": direction, "floor": rule.get("floor"), "margin": rule.get("margin")}
    return {"min_rows": min_rows, "metrics": clean}


def judge(name: str, candidate: float, champion: float, ci: list[float], rule: dict[str, Any]) -> tuple[bool, str]:
    """(passed, why) for one metric."""
    higher = rule["direction"] == "higher"
    floor, margin = rule.get("floor"), rule.get("margin")
    both = f"candidate {fmt(candidate)} vs champion {fmt(champion)}, delta 95% CI {fmt_ci(ci)}"
    if floor is not None and (candidate < floor if higher else candidate > floor):
        return False, f"{name}: {both}; candidate is {'below' if higher else 'above'} the floor {fmt(floor)}"
    if margin is not None:
        worse = ci[0] < -margin if higher else ci[1] > margin
        if worse:
            bound = "lower" if higher else "upper"
            return False, (f"{name}: {both}; the interval's {bound} end passes the non-inferiority margin "
                           f"{'-' if higher else '+'}{fmt(margin)} ({rule['direction']} is better)")  # fmt: skip
        return True, f"{name}: {both}; within the margin {fmt(margin)}"
    if floor is not None:
        return True, f"{name}: {both}; meets the floor {fmt(floor)}"
    return True, f"{name}: {both}; reported only (no floor, no margin)"


def decide(values: dict[str, dict[str, Any]], policy: dict[str, Any], rows: int) -> tuple[dict[str, Any], str, list]:
    """``values``: metric -> {candidate, champion, delta, ci95}. Return (report metrics, verdict, reasons)."""
    out: dict[str, Any] = {}
    reasons: list[str] = []
    if rows < policy["min_rows"]:
        reasons.append(f"gate set: {rows} rows, fewer than min_rows {policy['min_rows']}")
    for name, v in values.items():
        rule = policy["metrics"].get(name, {"direction": METRICS[name].direction, "floor": None, "margin": None})
        passed, why = judge(name, v["candidate"], v["champion"], v["ci95"], rule)
        out[name] = {**v, "direction": rule["direction"], "floor": rule["floor"], "margin": rule["margin"],
                     "passed": passed, "why": why}  # fmt: skip
        if not passed:
            reasons.append(why)
    return out, ("fail" if reasons else "pass"), reasons
