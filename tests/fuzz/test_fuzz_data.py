"""Fuzz: JSONL files mixing good rows and hostile lines through ``python -m tools data prepare``: exit 0 under
``--on-bad-row skip``, every good row written in order, every other row counted, no traceback, memory bounded."""

from __future__ import annotations

import json
from pathlib import Path

from tools.core.repo import REPO_ROOT

SEED = 13
CASES = 12


def test_hostile_rows_keep_the_promise(hostile, tmp_path: Path) -> None:  # noqa: ANN001
    cases = hostile.data_cases(SEED, CASES)
    argvs = []
    for case in cases:
        source = tmp_path / case.name / "train_sft.jsonl"
        source.parent.mkdir()
        source.write_bytes(case.data)
        out = tmp_path / case.name / "out"
        argvs.append(["data", "prepare", "--source", str(source), "--splits", "train_sft", "--percent", "100",
                      "--out", str(out), "--no-progress"])  # fmt: skip
    results, peak, child_err = hostile.run_cases(argvs, REPO_ROOT)
    assert len(results) == len(argvs), child_err[-3000:]
    broken = [(case.name, why) for case, result in zip(cases, results, strict=True)
              if (why := hostile.broken(result, {0}))]  # fmt: skip
    assert not broken, broken
    for case in cases:
        out = tmp_path / case.name / "out"
        written = [json.loads(line)["prompt_id"] for line in (out / "train_sft.jsonl").read_text().splitlines()]
        assert written == list(case.good_ids), case.name  # every good row, in order, nothing else
        entry = json.loads((out / "manifest.json").read_text())["outputs"]["train_sft"]
        rows = sum(1 for line in case.data.splitlines() if line.strip(b" \t\r\n\xef\xbb\xbf"))
        assert entry["selected"] == rows == entry["written"] + sum(entry["skipped"].values()), case.name
    assert peak < hostile.RSS_BOUND, f"peak RSS {peak >> 20} MB"
