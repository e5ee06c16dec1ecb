"""Run by tests/newcomer/test_interrupt.py in a child pytest (not collected on its own): a test that passes but
leaves a detached process behind, as a server whose stop was never reached would (its own session, its parent
gone). The session's end must stop it (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SLEEPER = "import time; time.sleep(600)"
# the intermediate process starts the sleeper in its own session, prints its pid and exits: the sleeper is orphaned
LAUNCHER = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', sys.argv[1]], "
            "start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(p.pid)")  # fmt: skip


def test_leaves_a_detached_process_behind() -> None:
    done = subprocess.run([sys.executable, "-c", LAUNCHER, SLEEPER], capture_output=True, text=True, check=True)
    Path(os.environ["LEAK_TARGET_PID_FILE"]).write_text(done.stdout.strip())
