"""What every rule receives: ``emit`` (report one finding) and the ``RuleContext`` (what rules may look up across
files). Imports no rule, so every rule module can name these types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tools.validate.document import Spec
from tools.validate.findings import ERROR


class Emit(Protocol):
    """``emit(key_path, message, severity=ERROR, rule="")``: one finding on the spec being checked; ``rule`` is an
    id from schemas/rules.yaml."""

    def __call__(self, key_path: tuple, message: str, severity: str = ERROR, rule: str = "") -> None: ...


@dataclass
class RuleContext:
    """What rules may look up across files: every spec being validated together, and the workspace policy."""

    specs: list[Spec]
    policy: str = "default"  # "prod" adds the promotion policy
    workspace: str | None = None  # a rendered workspace (its values declare every cluster); None: specs from anywhere
    computes: dict[str, str] = field(default_factory=dict)  # cluster name -> VM size
    compute_homes: dict[str, list[Path]] = field(default_factory=dict)  # cluster name -> project folders declaring it
    registered_models: dict[str, str] = field(default_factory=dict)  # model name -> base model URI (tag)
    memo: dict[str, Any] = field(default_factory=dict)  # what a rule derives once from all specs (its own key)

    def __post_init__(self) -> None:
        for spec in self.specs:
            data = spec.data or {}
            if spec.kind == "amlCompute" and isinstance(data.get("name"), str):
                self.computes[data["name"]] = str(data.get("size", ""))
                # its project: the folder above the compute spec's own (compute/ or resources/ of one project)
                self.compute_homes.setdefault(data["name"], []).append(spec.path.parent.parent)
            if spec.kind == "model" and isinstance(data.get("name"), str):
                tags = data.get("tags") or {}
                if isinstance(tags, dict) and isinstance(tags.get("base_model"), str):
                    self.registered_models[data["name"]] = tags["base_model"]


Check = Callable[[Spec, Emit, "RuleContext"], None]  # one concern's check(spec, emit, context)
