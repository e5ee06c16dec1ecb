"""Fixtures for plan/apply/promote/diff/drift/rollback: a scratch copy of the repo (never the real workspaces/ files)
and ``cloud``: the semantic stand-in `az` (tests/operate/standin_az/az.py, stateful, Azure ML's documented rules)
first on PATH behind a recorder of every call (tests/operate/cloud.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.operate.cloud import Cloud
from tools.core.repo import REPO_ROOT  # noqa: E402 - one source for the root

COPIED = ("workspaces", "schemas", "templates", "data/sample", "components", "environments")
@pytest.fixture()
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """A fresh, empty Azure behind the semantic stand-in `az`, first on PATH for this test; its endpoints' scoring
    URIs answer on 127.0.0.1 (the loopback scoring server, stopped after the test)."""
    handle = Cloud(tmp_path / "cloud")
    for key, value in handle.env().items():
        monkeypatch.setenv(key, value)
    server = handle.serve_scoring()
    try:
        yield handle
    finally:
        server.stop()


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
