"""Every command in the README's code blocks is exercised: `make` targets exist, `python -m tools` commands run
(read-only twins where the README's command writes: `render --check` for `render`), `az ml ... -f FILE` names a spec
that validates, and the "From clone to production" block is played by `make rehearse` (tests/newcomer holds the two
together). `make demo` and `make test` themselves are what CI and tests/demo run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tools.core.repo import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
REHEARSED = "## From clone to production"


def _blocks() -> list[tuple[str, list[list[str]]]]:
    """(the heading above, the commands) of every ```bash block."""
    found = []
    heading = ""
    lines = iter(README.splitlines())
    for line in lines:
        if line.startswith("## "):
            heading = line
        elif line.startswith("```bash"):
            commands = []
            for body in lines:
                if body.startswith("```"):
                    break
                if body.strip():
                    commands.append(shlex.split(body, comments=True))
            found.append((heading, commands))
    return found


COMMANDS = [(heading, command) for heading, commands in _blocks() for command in commands]
MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", (REPO_ROOT / "Makefile").read_text(encoding="utf-8"), re.M))


def test_the_readme_has_its_command_blocks() -> None:
    headings = [heading for heading, _ in _blocks()]
    assert "## Quickstart" in headings and REHEARSED in headings and len(COMMANDS) >= 12


@pytest.mark.parametrize(("heading", "command"), COMMANDS, ids=lambda value: shlex.join(value)
                         if isinstance(value, list) else value.strip("# "))  # fmt: skip
def test_readme_command(heading: str, command: list[str]) -> None:
    if command[:2] == ["git", "clone"] or heading == REHEARSED:
        return  # a placeholder URL; the production story runs in tests/newcomer/test_rehearse.py
    if command[0] == "make":
        assert command[1] in MAKE_TARGETS, f"make {command[1]}: no such target in the Makefile"
    elif command[:3] == ["python", "-m", "tools"]:
        argv = command[3:] + (["--check"] if command[3] == "render" else [])
        done = subprocess.run([sys.executable, "-m", "tools", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    elif command[:2] == ["az", "ml"]:
        spec = command[command.index("-f") + 1]
        done = subprocess.run([sys.executable, "-m", "tools", "validate", spec], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=600, check=False)  # fmt: skip
        assert done.returncode == 0, f"{shlex.join(command)}: {spec} does not validate\n{done.stdout}{done.stderr}"
    else:
        pytest.fail(f"a README command this test does not know how to exercise: {shlex.join(command)}")
