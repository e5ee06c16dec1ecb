"""Issue 23's spec classes through ``python -m tools validate``, all in one call: values YAML parses but cannot
build (class 1), a spec with thousands of unknown keys (class 3: linear work, findings capped per file in the text
report), a step's ``component:`` path too long for the file system (class 4). Each bad file is one
``file:line: key: message`` finding (exit 1), no internal error, and the good file beside them is still reported."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.validate.findings import MAX_PER_FILE, Finding, to_text

SCHEMA = "$schema: https://azuremlschemas.azureedge.net/latest/{}.schema.json\n"
JOB = SCHEMA.format("commandJob") + "type: command\ncommand: echo hi\nenvironment: azureml:sft-env:1\n"
UNBUILDABLE = {  # file name -> (text, line, key path shown)
    "bad-date.yml": (JOB + "tags:\n  when: 2024-13-45\n", 6, "tags.when"),
    "bad-bool.yml": (JOB + "tags:\n  flag: !!bool maybe\n", 6, "tags.flag"),
    "bad-int.yml": (JOB + "resources:\n  instance_count: !!int abc\n", 6, "resources.instance_count"),
    "huge-int.yml": (JOB + "tags:\n  n: " + "9" * 5000 + "\n", 6, "tags.n"),
    "huge-hex.yml": (JOB + "tags:\n  n: 0x" + "f" * 5000 + "\n", 6, "tags.n"),
    "seq-on-map.yml": ("--- !!seq\n" + JOB, 1, None),
}
UNKNOWN_KEYS = 2000


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("hostile")
    for name, (text, _, _) in UNBUILDABLE.items():
        (folder / name).write_text(text)
    (folder / "good.yml").write_text(JOB)
    keys = "".join(f"unknown_key_{i}: {i}\n" for i in range(UNKNOWN_KEYS))
    (folder / "many-keys.yml").write_text(JOB + keys)
    (folder / "long-component.yml").write_text(
        SCHEMA.format("pipelineJob") + "type: pipeline\njobs:\n  step:\n    type: command\n"
        f"    component: ./{'d' * 300}/component.yml\n"
    )
    result = subprocess.run([sys.executable, "-m", "tools", "validate", str(folder)], capture_output=True, text=True,
                            timeout=300, check=False)  # fmt: skip
    return folder, result


def test_values_yaml_cannot_build_are_findings_and_the_other_files_are_still_checked(report) -> None:  # noqa: ANN001
    folder, result = report
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr and "internal error" not in result.stdout
    assert " 0 internal" in result.stderr
    for name, (_, line, key) in UNBUILDABLE.items():
        prefix = f"{folder / name}:{line}: " + (f"{key}: " if key else "")
        assert any(row.startswith(prefix) for row in result.stdout.splitlines()), (name, result.stdout[-3000:])
        assert f"{folder / name} - " in result.stdout and " is invalid" in result.stdout
    assert f"{folder / 'good.yml'} - commandJob is valid" in result.stdout, result.stdout[-3000:]
    assert max(len(row) for row in result.stdout.splitlines()) < 2000


def test_thousands_of_unknown_keys_are_counted_and_the_text_report_is_capped(report) -> None:  # noqa: ANN001
    folder, result = report
    many = str(folder / "many-keys.yml")
    rows = [row for row in result.stdout.splitlines() if row.startswith(f"{many}:")]
    assert len(rows) == MAX_PER_FILE + 1, len(rows)
    assert rows[-1] == (f"{many}: and {UNKNOWN_KEYS - MAX_PER_FILE} more findings in this file (the first "
                        f"{MAX_PER_FILE} are shown; --format json lists every one)")  # fmt: skip
    assert f"{many} - commandJob is invalid, {UNKNOWN_KEYS} errors" in result.stdout


def test_a_component_path_too_long_for_the_file_system_is_a_finding_on_its_key(report) -> None:  # noqa: ANN001
    folder, result = report
    assert re.search(re.escape(f"{folder / 'long-component.yml'}:") + r"\d+: jobs\.step\.component: component "
                     r"'\./d+\.\.\. is not a usable local path \(File name too long\)", result.stdout), result.stdout


def test_the_text_cap_keeps_every_file_and_says_how_many_more() -> None:
    findings = [Finding("a.yml", i + 1, (f"k{i}",), "unknown key", "C") for i in range(MAX_PER_FILE + 50)]
    findings += [Finding("b.yml", 1, ("x",), "bad", "C")]
    rows = to_text(findings).splitlines()
    assert len(rows) == MAX_PER_FILE + 2
    assert rows[MAX_PER_FILE].startswith("a.yml: and 50 more findings") and rows[-1] == "b.yml:1: x: bad"
    assert len(to_text(findings, per_file=None).splitlines()) == len(findings)


def test_related_key_paths_answer_as_the_pairwise_comparison_did() -> None:
    """reconcile's prefix-set test (linear) against the pairwise definition it replaced (quadratic)."""
    from tools.validate.layers import _related_to

    rng = random.Random(23)

    def path() -> tuple:
        return tuple(rng.choice(["jobs", "a", "b", 0, 1, "inputs"]) for _ in range(rng.randint(0, 4)))

    b_paths = [path() for _ in range(60)]
    related = _related_to([Finding("f", 1, p, "m", "B") for p in b_paths])
    for _ in range(2000):
        key_path = path()
        pairwise = any(key_path[: min(len(key_path), len(p))] == p[: min(len(key_path), len(p))] for p in b_paths)
        assert related(key_path) == pairwise, key_path
