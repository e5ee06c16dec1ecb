"""Quota preflight: the cores a plan needs per VM family, and the check against Azure's usage before the step that
would otherwise fail with OutOfQuota.

Needs (pure, from the rendered specs and `schemas/catalog/skus.yaml`: vcpus and family per SKU):
  compute cluster        vcpus(size) x max_instances: what the cluster takes at full scale
  online deployment      vcpus(instance_type) x instance_count x 1.2, rounded up: Azure reserves 20 % more cores
                         than instance_count needs, for upgrades (how-to-manage-quotas; "OutOfQuota ...
                         Additional needed"); during a blue/green rollout the old deployment keeps its cores too
When executing, the usage comes from `az ml compute list-usage` (the workspace's region: Azure ML compute and
managed online endpoints share the per-family vCPU quota; rows `current_value`, `limit`, `name.value`), or, where
that command is not available (older `ml` extensions) or does not report the family, from
`az vm list-usage --location REGION` (Microsoft.Compute usages: `currentValue`, `limit`, `name.value`; the region
from the values' `workspace.location`, else `az ml workspace show --query location`). Families are compared
case-insensitively. A deployment must fit in limit - current; a cluster's full scale must fit in the limit. When
neither source reports the family, the step runs and Azure answers (the line says it was not checked).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tools.core.errors import CloudRefused
from tools.core.repo import active

UPGRADE_RESERVE = 1.2  # online deployments: 20 % extra cores held for upgrades


@dataclass(frozen=True)
class Need:
    what: str  # "deployment blue" / "compute gpu-a100"
    sku: str
    family: str | None  # None: SKU not in the table (no check)
    vcpus: int
    cores: int
    formula: str
    against: str  # "free" (limit - current) or "limit"

    def line(self) -> str:
        if self.family is None:
            return f"quota: {self.what}: {self.sku} is not in schemas/catalog/skus.yaml; cores not checked"
        return f"quota: {self.what} needs {self.cores} {self.family} vCPUs ({self.formula})"


def _sku_facts(sku: str) -> tuple[str | None, int]:
    facts = active().sku(sku) or {}
    return facts.get("family"), int(facts.get("vcpus", 0) or 0)


def deployment_need(name: str, spec: dict[str, Any]) -> Need:
    sku = str(spec.get("instance_type", ""))
    count = int(spec.get("instance_count", 1))
    family, vcpus = _sku_facts(sku)
    cores = math.ceil(vcpus * count * UPGRADE_RESERVE)
    return Need(f"deployment {name}", sku, family, vcpus, cores, f"{vcpus} x {count} instances x 1.2", "free")


def compute_need(spec: dict[str, Any]) -> Need:
    sku = str(spec.get("size", ""))
    count = int(spec.get("max_instances", 1))
    family, vcpus = _sku_facts(sku)
    return Need(f"compute {spec.get('name')}", sku, family, vcpus, vcpus * count, f"{vcpus} x {count} max instances",
                "limit")


@dataclass(frozen=True)
class Usage:
    family: str
    current: int
    limit: int


def parse_usage(rows: Any) -> dict[str, Usage]:
    """`az ml compute list-usage -o json` (snake_case) or `az vm list-usage -o json` (camelCase) rows by family,
    folded to lower case."""
    found: dict[str, Usage] = {}
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        name = row.get("name")
        family = name.get("value") if isinstance(name, dict) else name
        if not family:
            continue
        current = row.get("current_value", row.get("currentValue", 0))
        found[str(family).lower()] = Usage(str(family), int(current or 0), int(row.get("limit", 0) or 0))
    return found


def shortfall(need: Need, usage: dict[str, Usage]) -> str | None:
    """The line that says what is short, or None when the need fits (or cannot be checked)."""
    if need.family is None or need.cores == 0:
        return None
    row = usage.get(need.family.lower())
    if row is None:
        return None  # the region does not report this family: Azure answers at the step itself
    available = row.limit - row.current if need.against == "free" else row.limit
    if need.cores <= available:
        return None
    where = f"{available} free (limit {row.limit}, in use {row.current})" if need.against == "free" else (
        f"the limit is {row.limit}"
    )
    return (
        f"quota: {need.what} needs {need.cores} {row.family} vCPUs ({need.formula}), {where}: "
        f"{need.cores - available} short; request more quota for {row.family} or use a smaller "
        f"{'instance_count' if need.against == 'free' else 'max_instances'}"
    )


def ml_usage(az: Any, ws: Any) -> dict[str, Usage] | None:
    """`az ml compute list-usage` by family; None when the command fails (not available in this `ml` extension)."""
    result = az.call(["az", "ml", "compute", "list-usage", *ws.scope(), "-o", "json"])
    if result.code != 0:
        return None
    try:
        return parse_usage(json.loads(result.stdout or "[]"))
    except json.JSONDecodeError:
        return None


def vm_usage(az: Any, ws: Any) -> dict[str, Usage]:
    """`az vm list-usage --location REGION` by family (the region of the workspace)."""
    sub = ["--subscription", ws.subscription]
    location = ws.location or az.capture(
        ["az", "ml", "workspace", "show", "--name", ws.ml_workspace, "-g", ws.resource_group, *sub,
         "--query", "location", "-o", "tsv"], "quota: the workspace's region",
    )  # fmt: skip
    rows = az.json(["az", "vm", "list-usage", "--location", location, *sub], "quota: az vm list-usage")
    return parse_usage(rows)


def check(az: Any, ws: Any, need: Need) -> None:
    """Raise CloudRefused (before the step runs) when Azure's usage leaves too few cores for ``need``."""
    if need.family is None or need.cores == 0:
        return
    usage = ml_usage(az, ws)
    if usage is None or need.family.lower() not in usage:
        why = "is not available" if usage is None else f"does not report {need.family}"
        print(f"    quota: az ml compute list-usage {why}; asking az vm list-usage", flush=True)
        usage = vm_usage(az, ws)
    if need.family.lower() not in usage:
        print(f"    {need.line()}: not checked (no usage reported for {need.family}; Azure answers at the step)",
              flush=True)  # fmt: skip
        return
    problem = shortfall(need, usage)
    if problem:
        raise CloudRefused(problem)
    print(f"    {need.line()}: fits", flush=True)
