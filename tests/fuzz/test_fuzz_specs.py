"""Fuzz: hostile spec files through ``python -m tools validate`` keep the promise (one line with file and line,
exit 1 or 2, no traceback, memory under a bound), alone and all in one call (one file never costs the others)."""

from __future__ import annotations

import re
from pathlib import Path

from tools.core.repo import REPO_ROOT

SEED = 13
PER_CLASS = 3
# classes whose every case holds a defect we can name: an error (exit 1) on a line of that file
DEFECTIVE = {"aliases", "deep", "nul", "non-utf8", "non-string-keys", "unbuildable"}


def test_hostile_specs_keep_the_promise(hostile, tmp_path: Path) -> None:  # noqa: ANN001
    cases = hostile.spec_cases(SEED, PER_CLASS)
    paths = []
    for case in cases:
        path = tmp_path / case.name
        path.write_bytes(case.data)
        paths.append(path)
    argvs = [["validate", str(path)] for path in paths] + [["validate", *map(str, paths)]]
    results, peak, child_err = hostile.run_cases(argvs, REPO_ROOT)
    assert len(results) == len(argvs), child_err[-3000:]
    broken = [
        (case.kind, case.name, why)
        for case, result in zip(cases, results, strict=False)
        # every line bounded: findings cut echoed values, paths and keys (tools.validate.findings.bounded)
        if (why := hostile.broken(result, {0, 1, 2}))
    ]
    assert not broken, broken
    for case, path, result in zip(cases, paths, results, strict=False):
        if case.kind in DEFECTIVE:
            text = result["out"] + result["err"]
            assert result["code"] == 1, (case.name, text[-500:])
            assert re.search(re.escape(str(path)) + r":\d+: ", text), (case.name, text[-500:])
    batch = results[-1]
    assert hostile.broken(batch, {1}) is None, batch["err"][-2000:]
    batch_text = batch["out"] + batch["err"]
    missing = [case.name for case in cases if case.kind in DEFECTIVE and case.name not in batch_text]
    assert not missing, missing  # every defective file has its finding in the one-call report
    assert peak < hostile.RSS_BOUND, f"peak RSS {peak >> 20} MB"
