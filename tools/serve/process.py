"""Serve an MLflow model folder as a local online endpoint on 127.0.0.1 (MLflow's scoring server + Azure adapter).

  serve start --model DIR [--port 5001]   start in the background, wait until ready, print the scoring URL
  serve status                            list the endpoints this checkout started
  serve stop [--port P]                   stop one (or every) endpoint by its process group; verify the port is free

The endpoint answers ``POST http://127.0.0.1:P/score`` with either Azure's ``input_data`` body or MLflow's chat
body (see tools/serve/endpoint_host.py). State (PID, ports, log) lives in ``.runs/serve/`` (ignored). In Python:
``with local_endpoint(model_dir) as url: ...`` starts one on a free port and always stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.core.errors import UserError
from tools.core.files import atomic_write_text
from tools.core.repo import active
from tools.serve.endpoint_host import LOCAL_KEY_ENV, Limits, add_limit_arguments, limit_flags, limits_from

HOST = "127.0.0.1"
DEFAULT_PORT = 5001
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0


def default_state_dir() -> Path:
    """Where running local endpoints are recorded: ``.runs/serve/`` of the active repo."""
    return active().runs_dir / "serve"


@dataclass
class LocalEndpoint:
    """One running local endpoint, as recorded in ``<state_dir>/<port>.json``."""

    pid: int
    port: int
    upstream_port: int
    model: str
    log: str
    create_time: float
    state_dir: str = ""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/score"


# --------------------------------------------------------------------------------------------- ports


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def is_listening(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# --------------------------------------------------------------------------------------------- processes


def _process_alive(pid: int, create_time: float | None = None) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(process.create_time() - create_time) < 0.01
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    import psutil

    members = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                members.append(pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def _orphans(endpoint: LocalEndpoint) -> bool:
    """True when the leader is gone but processes it started (same group, started later) remain."""
    import psutil

    for pid in _group_members(endpoint.pid):
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).create_time() >= endpoint.create_time - 0.01:
                return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _tail(path: str, lines: int = 3) -> str:
    """The log's last error lines (a traceback's final ``Error: message``, the host's notes) on one line."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    plain = [s.strip() for s in text if s.strip() and not s[:1].isspace() and not s.startswith("Traceback")]
    errors = [s for s in plain if "Error" in s or "Exception" in s or s.startswith("endpoint_host:")]
    return " | ".join((errors or plain)[-lines:])


# --------------------------------------------------------------------------------------------- state


def _state_path(state_dir: Path, port: int) -> Path:
    return state_dir / f"{port}.json"


def recorded(state_dir: Path | None = None) -> list[LocalEndpoint]:
    """Every endpoint recorded in ``state_dir`` (running or stale)."""
    folder = state_dir or default_state_dir()
    endpoints = []
    for path in sorted(folder.glob("*.json")):
        try:
            endpoints.append(LocalEndpoint(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue
    return endpoints


# --------------------------------------------------------------------------------------------- start / stop


def start(
    model_dir: str | os.PathLike[str],
    port: int = 0,
    *,
    key: str | None = None,
    state_dir: Path | None = None,
    ready_timeout: float = READY_TIMEOUT_S,
    limits: Limits | None = None,
) -> LocalEndpoint:
    """Start the local endpoint in its own process group, record it, and wait until ``/ping`` answers 200.

    ``port=0`` picks a free port. ``key`` turns on Bearer key auth. ``limits``: body cap, timeouts, pending requests
    (tools.serve.endpoint_host.Limits; defaults when None). Raises UserError (after cleaning up) when the model
    folder is wrong, the port is taken, the server dies, or it is not ready within ``ready_timeout`` seconds.
    """
    import psutil

    model = Path(model_dir).resolve()
    if not (model / "MLmodel").is_file():
        raise UserError(f"{model_dir}: not an MLflow model folder (no MLmodel file)")
    port = port or free_port()
    if is_listening(port):
        raise UserError(f"port {port} on {HOST} is already in use; pick another with --port")
    folder = state_dir or default_state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    upstream_port = free_port()
    log_path = folder / f"{port}.log"
    env = dict(os.environ)

    env.pop(LOCAL_KEY_ENV, None)
    if key:
        env[LOCAL_KEY_ENV] = key
    command = [sys.executable, "-m", "tools.serve.endpoint_host", "--model", str(model), "--port", str(port),
               "--upstream-port", str(upstream_port), *limit_flags(limits or Limits())]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    endpoint = LocalEndpoint(
        pid=process.pid,
        port=port,
        upstream_port=upstream_port,
        model=str(model),
        log=str(log_path),
        create_time=psutil.Process(process.pid).create_time(),
        state_dir=str(folder),
    )
    atomic_write_text(_state_path(folder, port), json.dumps(asdict(endpoint), indent=2) + "\n")
    try:
        _wait_ready(endpoint, process, ready_timeout)
    except BaseException:
        stop_endpoint(endpoint, process=process)
        raise
    return endpoint


def _wait_ready(endpoint: LocalEndpoint, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(
                f"the local endpoint exited with code {process.returncode} during start-up: {_tail(endpoint.log)} "
                f"(full log: {endpoint.log})"
            )
        try:
            with urllib.request.urlopen(f"http://{HOST}:{endpoint.port}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise UserError(f"the local endpoint was not ready within {timeout:g} s (log: {endpoint.log})")


def stop_endpoint(
    endpoint: LocalEndpoint, *, state_dir: Path | None = None, process: subprocess.Popen | None = None
) -> None:
    """Stop ``endpoint``'s whole process group (SIGTERM, then SIGKILL), reap it, and verify both ports are free."""
    folder = state_dir or (Path(endpoint.state_dir) if endpoint.state_dir else default_state_dir())
    if _process_alive(endpoint.pid, endpoint.create_time) or _orphans(endpoint):
        _signal_group(endpoint.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _group_members(endpoint.pid) and time.monotonic() < deadline:
        if process is not None:
            process.poll()  # reap the leader when we are its parent
        time.sleep(0.1)
    if _group_members(endpoint.pid):
        _signal_group(endpoint.pid, signal.SIGKILL)
        time.sleep(0.5)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    busy = [p for p in (endpoint.port, endpoint.upstream_port) if _still_listening(p)]
    with contextlib.suppress(FileNotFoundError):
        _state_path(folder, endpoint.port).unlink()
    if busy:
        raise UserError(f"stopped pid {endpoint.pid}, but port(s) {busy} on {HOST} still accept connections")


def _still_listening(port: int, grace: float = 3.0) -> bool:
    deadline = time.monotonic() + grace
    while is_listening(port):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)
    return False


def stop(port: int | None = None, *, state_dir: Path | None = None) -> list[LocalEndpoint]:
    """Stop the recorded endpoint on ``port`` (every recorded one when None); return what was stopped."""
    endpoints = [e for e in recorded(state_dir) if port is None or e.port == port]
    if port is not None and not endpoints:
        raise UserError(f"no local endpoint recorded on port {port} (see: python -m tools serve status)")
    for endpoint in endpoints:
        stop_endpoint(endpoint, state_dir=state_dir or default_state_dir())
    return endpoints


@contextlib.contextmanager
def local_endpoint(
    model_dir: str | os.PathLike[str],
    port: int = 0,
    *,
    key: str | None = None,
    state_dir: Path | None = None,
    ready_timeout: float = READY_TIMEOUT_S,
    limits: Limits | None = None,
) -> Iterator[str]:
    """Serve ``model_dir`` on 127.0.0.1 for the ``with`` block and yield the scoring URL; always stops it.

    The server log is removed after a clean exit and kept (its path is in the state) when the block raised.
    """
    endpoint = start(model_dir, port, key=key, state_dir=state_dir, ready_timeout=ready_timeout, limits=limits)
    try:
        yield endpoint.url
    except BaseException:
        stop_endpoint(endpoint)
        raise
    stop_endpoint(endpoint)
    with contextlib.suppress(FileNotFoundError):
        Path(endpoint.log).unlink()


# --------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="serve_command", metavar="<subcommand>")
    begin = sub.add_parser("start", help="serve an MLflow model folder in the background until `serve stop`")
    begin.add_argument("--model", required=True, help="MLflow model folder (holds MLmodel)")
    begin.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on {HOST} (default {DEFAULT_PORT})")
    begin.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT_S, help="seconds to wait for readiness")
    begin.add_argument("--key-env", metavar="VAR", help="require `Authorization: Bearer $VAR` (key auth)")
    add_limit_arguments(begin)
    end = sub.add_parser("stop", help="stop a local endpoint (all of them without --port)")
    end.add_argument("--port", type=int, help="the endpoint's port")
    sub.add_parser("status", help="list the recorded local endpoints")


def run(args: argparse.Namespace) -> int:
    if args.serve_command == "start":
        key = None
        if args.key_env:
            key = os.environ.get(args.key_env)
            if not key:
                raise UserError(f"--key-env {args.key_env}: the variable is not set")
        try:
            limits = limits_from(args)
        except ValueError as error:
            raise UserError(str(error)) from None
        endpoint = start(args.model, args.port, key=key, ready_timeout=args.ready_timeout, limits=limits)
        print(f"serving {endpoint.model} at {endpoint.url} (pid {endpoint.pid}, log {endpoint.log})")
        print(f"stop with: python -m tools serve stop --port {endpoint.port}")
        return 0
    if args.serve_command == "stop":
        stopped = stop(args.port)
        for endpoint in stopped:
            print(f"stopped {endpoint.url} (pid {endpoint.pid}); port {endpoint.port} is free")
        if not stopped:
            print("no local endpoint recorded")
        return 0
    if args.serve_command == "status":
        endpoints = recorded()
        for endpoint in endpoints:
            state = "running" if _process_alive(endpoint.pid, endpoint.create_time) else "stale"
            print(f"{endpoint.url}  pid {endpoint.pid}  {state}  {endpoint.model}")
        if not endpoints:
            print("no local endpoint recorded")
        return 0
    raise UserError("serve: choose a subcommand: start, stop or status (see --help)")
