"""The Makefile's promises to a newcomer: `make bench` runs every benchmark and names the failures at the end
(a failing one does not stop the rest), and `make help` says what `make test` needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tools.core.repo import REPO_ROOT

STAMP = ".venv/.installed"  # -o: never rebuild the venv from a test


def make(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO_ROOT), "-o", STAMP, *argv],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def bench_script(folder: Path, name: str, code: int) -> Path:
    path = folder / name
    path.write_text(f"import sys\nprint('figure from {name}')\nsys.exit({code})\n")
    return path


def test_bench_runs_every_benchmark_and_names_the_failures_at_the_end(tmp_path: Path) -> None:
    scripts = [bench_script(tmp_path, "a_fails.py", 1), bench_script(tmp_path, "b_passes.py", 0),
               bench_script(tmp_path, "c_fails.py", 3)]  # fmt: skip
    done = make("bench", f"BENCHES={' '.join(map(str, scripts))}")
    assert done.returncode != 0
    for script in scripts:
        assert f"== {script}" in done.stdout and f"figure from {script.name}" in done.stdout
    assert f"make bench: failed: {scripts[0]} {scripts[2]}\n" in done.stderr  # then make's own "Error 1" line


def test_bench_passes_when_every_benchmark_passes(tmp_path: Path) -> None:
    scripts = [bench_script(tmp_path, "one.py", 0), bench_script(tmp_path, "two.py", 0)]
    done = make("bench", f"BENCHES={' '.join(map(str, scripts))}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "make bench: all 2 benchmarks ran"


def test_bench_runs_all_of_benchmarks_by_default() -> None:
    done = make("-n", "bench")
    assert done.returncode == 0
    for script in sorted((REPO_ROOT / "benchmarks").glob("*.py")):
        assert f"benchmarks/{script.name}" in done.stdout


def test_help_says_what_make_test_needs() -> None:
    done = make("help")
    line = next(line for line in done.stdout.splitlines() if line.startswith("test"))
    assert "network" in line and "root" in line and "min" in line
    assert ".venv/bin/python -m tools" in done.stdout
