"""Fuzz, the longer run: many more seeded hostile specs, values files and data rows than tests/fuzz runs, through
the same bounded child; prints per class how many cases ran and how many broke the promise (traceback, internal
error, exit code outside the documented set, a hang, an echoed-input message line), and the child's peak RSS.

    python benchmarks/fuzz.py [--seed N] [--per-class N] [--data-cases N]

Exit 1 when any case broke the promise. Uses only generated inputs (never the corpus).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import ModuleType

from tools.core.offline import apply_offline_env
from tools.core.repo import REPO_ROOT

FUZZ_DIR = REPO_ROOT / "tests" / "fuzz"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", FUZZ_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--data-cases", type=int, default=100)
    args = parser.parse_args()
    apply_offline_env()
    hostile, conftest = _load("hostile"), _load("conftest")
    tally: Counter[tuple[str, str]] = Counter()
    failures: list[str] = []
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # specs ----------------------------------------------------------------------------------------------
        cases = hostile.spec_cases(args.seed, args.per_class)
        for case in cases:
            (work / case.name).write_bytes(case.data)
        results, peaks["specs"], _ = hostile.run_cases([["validate", str(work / c.name)] for c in cases], REPO_ROOT)
        for case, result in zip(cases, results, strict=False):
            why = hostile.broken(result, {0, 1, 2}, max_line=None)
            long_line = hostile.broken(result, {0, 1, 2})
            tally[("spec:" + case.kind, "broken" if why else "ok")] += 1
            tally[("spec:" + case.kind, "long line")] += bool(long_line and not why)
            if why:
                failures.append(f"spec {case.name}: {why[:300]}")
        # values ---------------------------------------------------------------------------------------------
        root = conftest.copy_root(work / "root")
        base = (REPO_ROOT / "workspaces" / "dev.yaml").read_text()
        cases = hostile.values_cases(args.seed, args.per_class, base)
        for case in cases:
            (root / "workspaces" / f"{case.name}.yaml").write_bytes(case.data)
        argvs = [["plan", "--root", str(root), "--workspace", c.name, "--layers", "A"] for c in cases]
        results, peaks["values"], _ = hostile.run_cases(argvs, REPO_ROOT)
        for case, result in zip(cases, results, strict=False):
            why = hostile.broken(result, {0, 1, 2})
            tally[("values:" + case.kind, "broken" if why else "ok")] += 1
            if why:
                failures.append(f"values {case.name}: {why[:300]}")
        # data rows ------------------------------------------------------------------------------------------
        cases = hostile.data_cases(args.seed, args.data_cases)
        argvs = []
        for case in cases:
            (work / case.name).mkdir()
            (work / case.name / "train_sft.jsonl").write_bytes(case.data)
            source, out = work / case.name / "train_sft.jsonl", work / case.name / "out"
            argvs.append(["data", "prepare", "--source", str(source), "--splits", "train_sft", "--percent", "100",
                          "--out", str(out), "--no-progress"])  # fmt: skip
        results, peaks["data"], _ = hostile.run_cases(argvs, REPO_ROOT)
        for case, result in zip(cases, results, strict=False):
            why = hostile.broken(result, {0})
            if not why:
                out = work / case.name / "out" / "train_sft.jsonl"
                written = [json.loads(line)["prompt_id"] for line in out.read_text().splitlines()]
                why = None if written == list(case.good_ids) else "good rows lost or extra rows written"
            tally[("data:rows", "broken" if why else "ok")] += 1
            tally[("data:good rows", "kept")] += len(case.good_ids) if not why else 0
            if why:
                failures.append(f"data {case.name}: {why[:300]}")
    classes = sorted({cls for cls, _ in tally})
    print(f"fuzz seed {args.seed}: {args.per_class} per spec/values class, {args.data_cases} data files")
    print(f"{'class':28} {'ok':>6} {'broken':>7} {'long line':>10}")
    for cls in classes:
        ok = tally[(cls, "ok")] or tally[(cls, "kept")]
        print(f"{cls:28} {ok:>6} {tally[(cls, 'broken')]:>7} {tally[(cls, 'long line')]:>10}")
    print("peak RSS per child: " + ", ".join(f"{k} {v >> 20} MB" for k, v in peaks.items()))
    for line in failures[:30]:
        print("BROKEN", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
