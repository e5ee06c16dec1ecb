"""Fixtures for plan/apply/promote/diff: a scratch copy of the repo (never the real workspaces/ files) and a
stand-in `az` executable first on PATH that records its argv and answers like the real CLI for the calls we make.

The stand-in is configured by environment variables:
  AZ_LOG         file the argv of every call is appended to (one JSON list per line)
  AZ_FAIL        ';'-separated command prefixes ("ml job create") that fail with exit AZ_FAIL_CODE (default 1)
  AZ_EXISTS      ';'-separated prefixes of `show` calls that find the resource (others: ResourceNotFound, exit 1)
  AZ_JOB_NAME    the name `az ml job create --query name -o tsv` prints
  AZ_JOB_STATUS  the status `az ml job show --query status -o tsv` prints (default Completed)
  AZ_EMPTY       ';'-separated `--query` fields that print nothing (e.g. container_registry before the ACR exists)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COPIED = ("workspaces", "schemas", "templates", "data/sample", "components", "environments")
JOB_NAME = "ashy_lamp_7k2m9x"

AZ_SCRIPT = '''#!{python}
"""Stand-in for the Azure CLI in tests: records argv, answers like `az` for the calls the repo's tools make."""
import json
import os
import sys

args = sys.argv[1:]
with open(os.environ["AZ_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\\n")
line = " ".join(args)


def listed(var):
    return [p for p in os.environ.get(var, "").split(";") if p]


def value(flag):
    return args[args.index(flag) + 1] if flag in args else None


if any(line.startswith(prefix) for prefix in listed("AZ_FAIL")):
    sys.stderr.write("ERROR: (BadRequest) stand-in failure for: " + line + "\\n")
    sys.exit(int(os.environ.get("AZ_FAIL_CODE", "1")))
query = value("--query")
if query in listed("AZ_EMPTY"):
    sys.exit(0)
answers = {{
    "name": os.environ.get("AZ_JOB_NAME", "{job}"),
    "status": os.environ.get("AZ_JOB_STATUS", "Completed"),
    "principalId": "11111111-2222-3333-4444-555555555555",
    "storage_account": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stws",
    "container_registry": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/crws",
}}
if query is not None and value("-o") == "tsv":
    print(answers.get(query, ""))
    sys.exit(0)
if "show" in args[:4]:
    if not any(line.startswith(prefix) for prefix in listed("AZ_EXISTS")):
        sys.stderr.write("ERROR: (ResourceNotFound) " + str(value("--name")) + " not found\\n")
        sys.exit(1)
    print(json.dumps({{"name": value("--name"), "version": value("--version")}}))
    sys.exit(0)
if args[:3] == ["ml", "online-endpoint", "invoke"]:
    print(json.dumps("Hello from the stand-in endpoint."))
    sys.exit(0)
print(json.dumps({{"name": value("--name") or "created"}}))
'''


class FakeAz:
    """Handle on the stand-in: its log and its knobs."""

    def __init__(self, bin_dir: Path, log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin_dir = bin_dir
        self.log = log
        self._monkeypatch = monkeypatch

    def set(self, **env: str) -> None:
        for key, val in env.items():
            self._monkeypatch.setenv(f"AZ_{key.upper()}", val)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture()
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAz:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "az"
    script.write_text(AZ_SCRIPT.format(python=sys.executable, job=JOB_NAME))
    script.chmod(0o755)
    log = tmp_path / "az-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("AZ_LOG", str(log))
    for var in ("AZ_FAIL", "AZ_FAIL_CODE", "AZ_EXISTS", "AZ_JOB_NAME", "AZ_JOB_STATUS", "AZ_EMPTY"):
        monkeypatch.delenv(var, raising=False)
    return FakeAz(bin_dir, log, monkeypatch)


def copy_repo(dest: Path) -> Path:
    """The parts of the repo the tools read, rendered for the default workspace like the committed tree."""
    from tools.render.engine import render_workspace, write_rendered

    for rel in COPIED:
        source = REPO_ROOT / rel
        if source.is_dir():
            shutil.copytree(source, dest / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    write_rendered(render_workspace("dev", dest, dest), dest)
    (dest / "endpoints").mkdir(exist_ok=True)
    (dest / "endpoints" / "sample_score.json").write_text(
        json.dumps({"input_data": {"input_string": [{"role": "user", "content": "Hi"}], "parameters": {}}}) + "\n"
    )
    return dest


@pytest.fixture()
def scratch_repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


@pytest.fixture()
def make_repo() -> Callable[[Path], Path]:
    return copy_repo


@pytest.fixture()
def tools_cli(capfd: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `python -m tools ...` in-process; returns (exit code, stdout, stderr) including subprocess output."""
    from tools.__main__ import main

    def call(*argv: str) -> tuple[int, str, str]:
        capfd.readouterr()
        code = main(list(argv))
        out, err = capfd.readouterr()
        return code, out, err

    return call
