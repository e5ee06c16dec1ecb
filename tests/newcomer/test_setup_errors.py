"""A missing package is the user's setup, not a bug: one line naming the package and how to get it (`make venv`,
then `.venv/bin/python -m tools`), exit 2, never `internal error` (exit 3)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from tools import __main__ as cli
from tools.core.repo import REPO_ROOT


@pytest.mark.parametrize(
    ("error", "package"),
    [
        (ModuleNotFoundError("No module named 'yaml'", name="yaml"), "PyYAML"),
        (ModuleNotFoundError("No module named 'azure.ai.ml'", name="azure.ai.ml"), "azure-ai-ml"),
        (ModuleNotFoundError("No module named 'datasets'", name="datasets"), "datasets"),
        (ModuleNotFoundError("No module named 'torch.nn'", name="torch.nn"), "torch"),
        (importlib.metadata.PackageNotFoundError("azure-ai-ml"), "azure-ai-ml"),
        (ModuleNotFoundError("No module named 'tools.nothing'", name="tools.nothing"), None),  # our bug
        (ValueError("x"), None),
    ],
)
def test_missing_distribution(error: BaseException, package: str | None) -> None:
    assert cli.missing_distribution(error) == package


def test_a_missing_package_inside_a_command_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def run(args: object) -> int:
        import torch_but_not_installed  # noqa: F401

        return 0

    from tools.operate import diff

    monkeypatch.setattr(diff, "run", run)
    assert cli.main(["diff", "--workspace", "dev"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err
    assert "torch_but_not_installed is not installed" in err and "make venv" in err


@pytest.mark.parametrize("command", [["data", "prepare"], ["validate", "--all"], ["tiny-model", "--out", "x"],
                                     ["demo"], ["plan", "--workspace", "dev"]])  # fmt: skip
def test_outside_the_venv_every_command_says_how_to_set_up(command: list[str], tmp_path) -> None:
    # -S: no site-packages, like a system python3 without the project's packages
    done = subprocess.run([sys.executable, "-S", "-m", "tools", *command], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "is not installed" in done.stderr and "make venv" in done.stderr and ".venv/bin/python -m tools" in (
        done.stderr)
