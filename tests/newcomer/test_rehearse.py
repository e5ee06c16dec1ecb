"""`make rehearse` (`python -m tools rehearse`): the README's "From clone to production" story end to end, offline,
against the stand-in `az`, labelled as a stand-in, each command with what it printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.core.repo import REPO_ROOT


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
