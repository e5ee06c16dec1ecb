"""`make rehearse` (`python -m tools rehearse`): the README's "From clone to production" story end to end, offline,
against the stand-in `az`, labelled as a stand-in, each command with what it printed."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from tools.core.repo import REPO_ROOT
from tools.demo import rehearse
from tools.render.values import load_values


def test_rehearsal_runs_the_production_story_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tools", "rehearse", "--dir", str(tmp_path / "r")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    out = done.stdout
    assert out.startswith("REHEARSAL against a stand-in for Azure")
    for step in range(1, 10):
        assert f"\n== {step}. " in out
    assert "rehearsal done in" in out.splitlines()[-1]
    log = (tmp_path / "r" / "rehearse.log").read_text()
    assert "created blue with all traffic" in log  # first deployment
    assert "rolled out green: all traffic on green" in log  # v2: blue/green
    assert "rolled out blue: all traffic on blue" in log  # the revert rolls v1 back out
    assert "drift: " in log and "(exit 1)" in log
    # the promotion commits and the revert happened in the scratch repo, not in this checkout
    history = subprocess.run(["git", "-C", str(tmp_path / "r" / "repo"), "log", "--format=%s"], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    assert history.splitlines()[0].startswith('Revert "Promote ') and "clone" in history


def _readme_story() -> list[list[str]]:
    """The commands of the README's "From clone to production" block, comments dropped."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## From clone to production", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def _as_typed(command: rehearse.Command) -> list[str]:
    """What a user types for a story command, without what only the rehearsal adds (--layers, -q, --allow-empty)."""
    kind, *rest = command.argv
    words = ["python", "-m", "tools", *rest] if kind == "tools" else ["git", *rest]
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--layers":
            skip = True
        elif word not in ("-q", "--allow-empty"):
            kept.append(word)
    return kept


def test_the_rehearsal_runs_every_readme_command_in_order() -> None:
    registered = load_values("dev").data["registered_model"]
    played = [_as_typed(command) for _, commands in rehearse.story("ACD", registered["name"], registered["version"])
              for command in commands]  # fmt: skip
    readme = _readme_story()
    assert len(readme) >= 8
    position = 0
    for command in readme:
        assert command in played[position:], f"README command not rehearsed (in this order): {shlex.join(command)}"
        position = played.index(command, position) + 1
