"""An interrupted test run leaves nothing running: a child pytest holds a real local endpoint (the serve fixture:
adapter, MLflow's server and uvicorn, in their own session), is interrupted the way a terminal (SIGINT to the
foreground process group) or a killed `make test` (SIGTERM to pytest) interrupts it, and afterwards no process it
started survives and no port it listened on accepts connections (tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from tests.serve.conftest import finetuned_model  # noqa: F401 - the shared fine-tuned tiny model
from tools.core.repo import REPO_ROOT
from tools.serve import process as serve

TARGET = Path(__file__).with_name("interrupt_target.py")
READY_LINE = "interrupt-target: serving on port"
START_WAIT_S = 300  # an upper bound against hangs (a cold MLflow start on a busy 2-core machine), not a speed check
EXIT_WAIT_S = 120


def _read_until_ready(process: subprocess.Popen, lines: list[str]) -> tuple[int, int] | None:
    """The endpoint's two ports from the target's ready line; None when the child ends first."""
    for line in process.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if READY_LINE in line:
            words = line.split(READY_LINE, 1)[1].split()
            return int(words[0]), int(words[2])
    return None


@pytest.mark.parametrize(("signum", "whole_group"), [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["sigint-to-the-terminal-group", "sigterm-to-pytest"])  # fmt: skip
def test_interrupted_run_leaves_nothing_listening(
    signum: int, whole_group: bool, finetuned_model: Path, tmp_path: Path  # noqa: F811
) -> None:
    env = {**os.environ, "INTERRUPT_TARGET_MODEL": str(finetuned_model)}
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(TARGET),
               "--basetemp", str(tmp_path / "child")]  # fmt: skip
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)  # fmt: skip
    lines: list[str] = []
    watchdog = threading.Timer(START_WAIT_S, lambda: os.killpg(child.pid, signal.SIGKILL))
    watchdog.start()
    try:
        ports = _read_until_ready(child, lines)
    finally:
        watchdog.cancel()
    assert ports is not None, "the target never served:\n" + "".join(lines[-40:])
    family = psutil.Process(child.pid).children(recursive=True)
    assert len(family) >= 2, family  # the endpoint's adapter and MLflow's server at least
    assert all(serve.is_listening(port) for port in ports)

    if whole_group:
        os.killpg(child.pid, signum)  # Ctrl-C: the terminal signals the foreground group, not the endpoint's session
    else:
        child.send_signal(signum)  # `make` killed with SIGTERM forwards it to pytest only
    rest, _ = child.communicate(timeout=EXIT_WAIT_S)
    output = "".join(lines) + rest

    survivors = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    try:
        assert child.returncode != 0, output
        assert survivors == [], f"{survivors} survived the interruption:\n{output[-3000:]}"
        assert [port for port in ports if serve.is_listening(port)] == [], output[-3000:]
    finally:
        for process in survivors:  # never leave them to the next test
            process.kill()


def test_a_finished_run_stops_what_a_test_left_detached(tmp_path: Path) -> None:
    """Not interrupted: a test passes but leaves a detached process (reparented, its own session): the session's
    end finds it by the marker it inherited and stops it, and says so."""
    pid_file = tmp_path / "leaked.pid"
    env = {**os.environ, "LEAK_TARGET_PID_FILE": str(pid_file)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(Path(__file__).with_name("leak_target.py")), "--basetemp", str(tmp_path / "child")],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=EXIT_WAIT_S)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    leaked = int(pid_file.read_text())
    assert "a test or fixture left servers running: stopped 1 leftover process(es)" in done.stderr, done.stderr
    assert not psutil.pid_exists(leaked) or psutil.Process(leaked).status() == psutil.STATUS_ZOMBIE
