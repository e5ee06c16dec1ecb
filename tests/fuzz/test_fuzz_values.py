"""Fuzz: hostile workspace values files through ``python -m tools plan --root COPY`` (values -> render -> plan):
one line naming the values file and line, exit 2 (or a plan / its findings), no traceback, memory bounded."""

from __future__ import annotations

from pathlib import Path

from tools.core.repo import REPO_ROOT

SEED = 13
PER_CLASS = 2
# the values file itself is refused: one line naming it, exit 2
DEFECTIVE = {"aliases", "deep", "nul", "non-utf8", "non-string-keys", "unbuildable", "huge-numbers"}


def test_hostile_values_keep_the_promise(hostile, repo_copy: Path) -> None:  # noqa: ANN001
    base = (REPO_ROOT / "workspaces" / "dev.yaml").read_text()
    cases = hostile.values_cases(SEED, PER_CLASS, base)
    for case in cases:
        (repo_copy / "workspaces" / f"{case.name}.yaml").write_bytes(case.data)
    argvs = [
        ["plan", "--root", str(repo_copy), "--workspace", case.name, "--layers", "A", "--stage", "bootstrap"]
        for case in cases
    ]
    results, peak, child_err = hostile.run_cases(argvs, REPO_ROOT)
    assert len(results) == len(argvs), child_err[-3000:]
    broken = [
        (case.kind, case.name, why)
        for case, result in zip(cases, results, strict=True)
        if (why := hostile.broken(result, {0, 1, 2}))
    ]
    assert not broken, broken
    for case, result in zip(cases, results, strict=True):
        if case.kind in DEFECTIVE:
            assert result["code"] == 2, (case.name, result["err"][-500:])
            assert f"workspaces/{case.name}.yaml:" in result["err"], (case.name, result["err"][-500:])
            assert result["err"].count("\n") == 1, result["err"]
    assert peak < hostile.RSS_BOUND, f"peak RSS {peak >> 20} MB"
