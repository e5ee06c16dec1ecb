"""`make demo` end to end: it exits 0, tells its story, evaluates the fine-tune against its base (table, verdict,
report + plot), prints a Prompt flow answer, and leaves no process and no listening port behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psutil


def listening_ports() -> set[int]:
    return {c.laddr.port for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def test_demo_runs_the_chain_and_cleans_up(repo_root: Path) -> None:
    before = listening_ports()
    result = subprocess.run(
        [sys.executable, "-m", "tools", "demo"],  # exactly what `make demo` runs
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = result.stdout
    assert result.returncode == 0, (out + result.stderr)[-2000:]
    assert "Traceback" not in out + result.stderr
    for number in range(1, 8):
        assert f"[{number}/7]" in out
    # the evaluation step: the fine-tune against its untrained base on the bundled gate set, table and verdict
    assert "verdict: PASS (candidate fine-tuned tiny model vs champion untrained base, 25 gate rows" in out
    nll_row = next(line for line in out.splitlines() if line.strip().startswith("nll "))
    assert nll_row.split()[-1] == "pass", nll_row
    evaluation = repo_root / ".runs" / "demo" / "evaluation"
    assert all((evaluation / name).is_file() for name in ("report.json", "report.md", "report.png"))
    assert "Prompt flow (pf flow test --flow flows/chat)" in out
    loss_line = next(line for line in out.splitlines() if "training loss" in line)
    first, last = (float(x) for x in re.findall(r"training loss ([\d.]+) → ([\d.]+)", loss_line)[0])
    assert last < first / 2, loss_line  # the fine-tune really learned the sample
    answers = [line.split("assistant:", 1)[1].strip() for line in out.splitlines() if "assistant:" in line]
    assert len(answers) == 2, answers  # the sample request's, then the Prompt flow's
    assert answers[1].strip("'\""), "the Prompt flow printed an empty answer"
    assert "JOB_NAME=$(az ml job create -f jobs/finetune.yml" in out  # the plan for the dev workspace
    assert "az ml online-endpoint delete --name ultrachat-phi4-dev" in out
    assert (repo_root / ".runs" / "demo" / "model" / "MLmodel").is_file()
    # nothing left behind: no new listening port (the local endpoint, pf's service on 23333), no demo process
    assert listening_ports() - before == set()
    assert 23333 not in listening_ports()
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and any(".runs/demo" in part for part in p.info["cmdline"])
    ]
    assert leftovers == []
