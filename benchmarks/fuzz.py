"""Fuzz, the longer run: many more seeded hostile specs, values files and data rows than tests/fuzz runs, through
the same bounded child; prints per class how many cases ran and how many broke the promise (traceback, internal
error, exit code outside the documented set, a hang, an echoed-input message line), and the child's peak RSS.

    python benchmarks/fuzz.py [--seed N] [--per-class N] [--data-cases N] [--unknown-keys N]

Per class it prints the cases that kept and broke the promise and the exit codes seen. Then the scale check
(issue 23, class 3): a spec with ``--unknown-keys`` unknown keys (default 9,000: under yamlio's 20,000-node
bound) and one holding a 4 MiB file's worth (refused by that bound), each through ``python -m tools validate``:
wall seconds, exit code, errors counted, text lines printed (capped per file). A figure, never an assertion.

Exit 1 when any case broke the promise. Uses only generated inputs (never the corpus).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
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
    parser.add_argument("--unknown-keys", type=int, default=9_000)
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
            tally[("spec:" + case.kind, f"exit {result['code']}")] += 1
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
            tally[("values:" + case.kind, f"exit {result['code']}")] += 1
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
            tally[("data:rows", f"exit {result['code']}")] += 1
            tally[("data:good rows", "kept")] += len(case.good_ids) if not why else 0
            if why:
                failures.append(f"data {case.name}: {why[:300]}")
        scale = [_scale(work, "unknown keys", args.unknown_keys),
                 _scale(work, "4 MiB of unknown keys", _KEYS_IN_4_MIB)]  # fmt: skip
    classes = sorted({cls for cls, _ in tally})
    print(f"fuzz seed {args.seed}: {args.per_class} per spec/values class, {args.data_cases} data files")
    print(f"{'class':28} {'ok':>6} {'broken':>7} {'long line':>10}  exit codes")
    for cls in classes:
        ok = tally[(cls, "ok")] or tally[(cls, "kept")]
        codes = ", ".join(f"{what[5:]}: {n}" for (c, what), n in sorted(tally.items()) if c == cls
                          and what.startswith("exit ") and n)  # fmt: skip
        print(f"{cls:28} {ok:>6} {tally[(cls, 'broken')]:>7} {tally[(cls, 'long line')]:>10}  {codes}")
    print("peak RSS per child: " + ", ".join(f"{k} {v >> 20} MB" for k, v in peaks.items()))
    for line in scale:
        print(line)
    for line in failures[:30]:
        print("BROKEN", line)
    return 1 if failures else 0


_KEY_LINE = "unknown_key_{}: {}\n"


def _keys_within(budget: int) -> int:
    """How many key lines fit in ``budget`` bytes (after a 200-byte head)."""
    keys, size = 0, 200
    while size + len(_KEY_LINE.format(keys, keys)) <= budget:
        size += len(_KEY_LINE.format(keys, keys))
        keys += 1
    return keys


_KEYS_IN_4_MIB = _keys_within(4 * 1024 * 1024)


def _scale(work: Path, what: str, keys: int) -> str:
    """One validate run on a command job spec with ``keys`` unknown top-level keys: its time, exit and counts."""
    spec = work / f"scale-{keys}.yml"
    head = ("$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\ntype: command\n"
            "command: echo hi\nenvironment: azureml:sft-env:1\n")  # fmt: skip
    spec.write_text(head + "".join(_KEY_LINE.format(i, i) for i in range(keys)))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tools", "validate", "--no-cache", str(spec)], capture_output=True,
                          text=True, cwd=REPO_ROOT, check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    counted = re.search(r"(\d+) errors", done.stderr)
    return (f"scale, {what}: {keys:,} keys, {spec.stat().st_size:,} bytes -> exit {done.returncode} in "
            f"{seconds:.1f} s (SDK import included), {counted.group(1) if counted else '?'} errors counted, "
            f"{len(done.stdout.splitlines())} lines printed")


if __name__ == "__main__":
    sys.exit(main())
