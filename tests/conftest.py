"""Session-wide test settings: offline switches, temporary MLflow and Prompt flow homes, repo paths, and clean
interruption.

Interrupted (Ctrl-C, or SIGTERM as `make` forwards when it is killed), the session unwinds like Ctrl-C: SIGTERM
raises KeyboardInterrupt too, so every fixture's ``finally`` stops the server it started (pytest tears fixtures
down at the end of an interrupted session). Then, as a backstop, any process this session started that is still
alive (an endpoint in its own session, MLflow's server, uvicorn, a chat page host) is terminated, then killed:
an interrupted ``make test`` leaves nothing listening (tests/newcomer/test_interrupt.py proves it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from types import FrameType

import psutil
import pytest

from tools.core.offline import apply_offline_env
from tools.core.repo import REPO_ROOT, select

apply_offline_env()

SESSION_PID = os.getpid()
# Every process this session starts inherits the marker, even a server that detached itself (its own session, its
# parent gone): at the end, whatever still carries it is a leftover, found by the marker rather than by parentage.
SESSION_MARKER = "TOOLS_TEST_SESSION"
os.environ[SESSION_MARKER] = f"{SESSION_PID}-{os.urandom(4).hex()}"
REAP_GRACE_S = 5.0  # how long a leftover process has to exit on SIGTERM before SIGKILL
_family_at_signal: dict[int, psutil.Process] = {}


def _descendants() -> dict[int, psutil.Process]:
    try:
        return {child.pid: child for child in psutil.Process(SESSION_PID).children(recursive=True)}
    except psutil.Error:
        return {}


def _marked() -> dict[int, psutil.Process]:
    """Live processes started by this session (they carry its marker), wherever they were reparented."""
    found = {}
    for process in psutil.process_iter():
        if process.pid == SESSION_PID:
            continue
        with contextlib.suppress(psutil.Error):
            if process.environ().get(SESSION_MARKER) == os.environ[SESSION_MARKER]:
                found[process.pid] = process
    return found


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """In the session's process: remember every descendant (a child that dies first orphans its own children),
    then unwind like Ctrl-C. In a forked child, the signal's default behaviour."""
    if os.getpid() != SESSION_PID:
        if signum == signal.SIGINT:
            signal.default_int_handler(signum, frame)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _family_at_signal.update(_descendants())
    raise KeyboardInterrupt


def reap(processes: dict[int, psutil.Process], grace: float = REAP_GRACE_S) -> list[str]:
    """Terminate, then kill, each process still alive; return 'pid name' of each one that was."""
    alive, names = [], []
    for process in processes.values():
        with contextlib.suppress(psutil.Error):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                names.append(f"{process.pid} {process.name()}")
                process.terminate()
                alive.append(process)
    _, still = psutil.wait_procs(alive, timeout=grace)
    for process in still:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(still, timeout=grace)
    return names


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _on_signal)


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    """After every fixture's teardown (pytest's own sessionfinish): the session's leftovers, interrupted or not."""
    try:
        return (yield)
    finally:
        interrupted = bool(_family_at_signal) or exitstatus == pytest.ExitCode.INTERRUPTED
        left = reap({**_family_at_signal, **_descendants(), **_marked()})
        if left:
            why = "interrupted" if interrupted else "a test or fixture left servers running"
            print(f"{why}: stopped {len(left)} leftover process(es): {', '.join(left)}", file=sys.stderr)


@pytest.fixture(scope="session", autouse=True)
def _isolated_homes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep MLflow's tracking store and Prompt flow's home out of the checkout and the user's home."""
    home = tmp_path_factory.mktemp("homes")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    os.environ.setdefault("PF_HOME_DIRECTORY", str(home / "promptflow"))


@pytest.fixture(autouse=True)
def _the_checkout_stays_the_active_repo() -> Generator[None, None, None]:
    """A test that runs a command in-process with ``--root DIR`` selects DIR as the active repo; the next test reads
    this checkout again (a local endpoint's state folder, say, follows the active repo)."""
    yield
    select(None)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
