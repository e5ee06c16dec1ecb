"""Helpers for rule tests: run one rule module on a literal dict and collect (key path, severity, rule, message)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tools.validate.document import spec_from_dict
from tools.validate.rules.support import RuleContext


@pytest.fixture
def run_rule() -> Callable[..., list[tuple]]:
    def run(check: Callable, data: dict[str, Any], kind: str | None = None, policy: str = "default",
            path: Any = "spec.yml", others: list[dict] | None = None,
            workspace: str | None = None) -> list[tuple]:  # fmt: skip
        spec = spec_from_dict(data, kind, path)
        context = RuleContext([spec, *(spec_from_dict(o) for o in others or [])], policy=policy, workspace=workspace)
        found: list[tuple] = []

        def emit(key_path: tuple, message: str, severity: str = "error", rule: str = "") -> None:
            found.append((tuple(key_path), severity, rule, message))

        check(spec, emit, context)
        return found

    return run
