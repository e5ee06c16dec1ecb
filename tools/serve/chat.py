"""`python -m tools chat` (what `make chat` runs): chat with the fine-tuned model in a browser, as the walkthrough ends.

  chat [--model DIR] [--port 8080]      serve DIR (default: the model `make demo` leaves in .runs/demo/model) on the
                                        local endpoint, and the flow's chat page on http://127.0.0.1:PORT/
  chat --workspace dev                  the chat page against the workspace's Azure online endpoint: its scoring
                                        URI and key come from `az ml online-endpoint show/get-credentials` at run
                                        time and reach the flow through its environment only (never a file)
  chat --endpoint-url URL               the chat page against an endpoint that is already running

The page is Prompt flow's own chat UI: `pf flow serve --source flows/chat --engine fastapi`. The default Flask engine
cannot serve it in promptflow 1.18.5: its home page handler
(`promptflow/core/_serving/v1/blueprint/static_web_blueprint.py`) reads `os.environ` without importing `os`, so every
GET / answers `Failed to render jinja template` (a NameError no setting avoids); the FastAPI engine renders the same
page from the same static files. The page shows every flow input but the chat history as a required field and clears
them all after each message, so it serves `flows/chat/page/`: the chat flow with only the chat input and the chat
history as inputs (generation parameters: the tool's defaults, the workspace's `scoring:` values).

Ctrl-C (SIGINT) or SIGTERM stops the page server and the endpoint by their process groups and checks that nothing
listens on their ports any more. Both run in their own sessions, so the signal reaches only this process.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools.core.errors import UserError
from tools.core.repo import active
from tools.render.values import load_values
from tools.serve import process as host
from tools.serve.score import resolve_endpoint
from tools.serve.scoring_client import ENDPOINT_KEY_ENV, ENDPOINT_URL_ENV

ENGINE = "fastapi"  # the Flask engine's home page fails in promptflow 1.18.5 (see the module docstring)
DEFAULT_PORT = 8080  # the walkthrough's `pf flow serve --port 8080`
DEMO_MODEL = "model"  # tools/demo/story.py fine_tune() writes the MLflow model to <demo run dir>/model
READY_TIMEOUT_S = 120.0
ERRORS_AS_ANSWER_ENV = "CHAT_ERRORS_AS_ANSWER"  # flows/chat/chat.py: failures become a readable answer in the page


@dataclass
class Page:
    """The running `pf flow serve` chat page (recorded as a host.LocalEndpoint so host.stop_endpoint can stop it)."""

    endpoint: host.LocalEndpoint
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{host.HOST}:{self.endpoint.port}/"


def default_model() -> Path:
    return active().demo_run_dir / DEMO_MODEL


def page_flow() -> Path:
    """flows/chat/page/flow.dag.yaml: the chat flow with only the chat input and history."""
    return active().chat_flow_dir / "page"


def state_dir() -> Path:
    return active().runs_dir / "chat"


def check_model(model: Path, given: bool) -> Path:
    """The MLflow model folder, or one line saying how to get one."""
    if (model / "MLmodel").is_file():
        return model
    if given:
        raise UserError(f"{model}: not an MLflow model folder (no MLmodel file); pass the folder fine_tune.py wrote")
    raise UserError(f"{model}: no fine-tuned model yet: run `make demo` first (it leaves the model there)")


def workspace_endpoint(workspace: str) -> tuple[str, str | None]:
    """The workspace's online endpoint: scoring URI and key from `az` at run time (tools/serve/score.py)."""

    values = load_values(workspace).data
    scope = values["workspace"]
    return resolve_endpoint(None, values["endpoint"]["name"], scope["resource_group"], scope["name"])


# --------------------------------------------------------------------------------------------- the chat page


def start_page(url: str, key: str | None, port: int = 0, *, folder: Path | None = None,
               ready_timeout: float = READY_TIMEOUT_S) -> Page:  # fmt: skip
    """Start `pf flow serve` on 127.0.0.1:port for flows/chat/page against ``url``; wait until the page answers."""
    import psutil

    port = port or host.free_port()
    if host.is_listening(port):
        raise UserError(f"port {port} on {host.HOST} is already in use; pick another with --port")
    folder = folder or state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    root = active().root
    env = dict(os.environ, **{ENDPOINT_URL_ENV: url, ENDPOINT_KEY_ENV: key or "", ERRORS_AS_ANSWER_ENV: "1"})
    env.setdefault("PF_HOME_DIRECTORY", str(folder / "pf-home"))
    pf = Path(sys.executable).parent / "pf"
    command = [str(pf), "flow", "serve", "--source", str(page_flow()), "--host", host.HOST, "--port", str(port),
               "--engine", ENGINE, "--skip-open-browser"]  # fmt: skip
    log_path = folder / f"page-{port}.log"
    with log_path.open("wb") as log:  # cwd = the repo root: pf reads pf.yaml there (no telemetry, no trace service)
        process = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    record = host.LocalEndpoint(pid=process.pid, port=port, upstream_port=port, model=str(page_flow()),
                           log=str(log_path), create_time=psutil.Process(process.pid).create_time(),
                           state_dir=str(folder))  # fmt: skip
    page = Page(record, process)
    try:
        _wait_page(page, ready_timeout)
    except BaseException:
        stop_page(page)
        raise
    return page


def _wait_page(page: Page, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.process.poll() is not None:
            raise UserError(f"pf flow serve exited with code {page.process.returncode} during start-up: "
                            f"{_last_error(page.endpoint.log)}")  # fmt: skip
        try:
            with urllib.request.urlopen(page.url, timeout=2) as response:
                if response.status == 200 and b'id="root"' in response.read():
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise UserError(f"the chat page was not ready within {timeout:g} s (log: {page.endpoint.log})")


def stop_page(page: Page) -> None:
    """Stop the page server's process group and check its port is free (raises UserError when it is not)."""
    host.stop_endpoint(page.endpoint, process=page.process)


# --------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help=f"MLflow model folder to serve locally (default: .runs/demo/{DEMO_MODEL})")
    source.add_argument(
        "--workspace", metavar="NAME", help="this workspace's Azure online endpoint (URI, key: `az` at run time)"
    )
    source.add_argument("--endpoint-url", help=f"use an endpoint that is already running (key: ${ENDPOINT_KEY_ENV})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"chat page port (default {DEFAULT_PORT}; 0: any free)"
    )
    parser.add_argument("--endpoint-port", type=int, default=0, help="local endpoint port (default: any free one)")
    parser.add_argument("--root", help="the repo checkout to read the flow and the demo's model from")


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived (BaseException, like KeyboardInterrupt, so no `except Exception` swallows it)."""


def _on_signal(signum: int, _frame: object) -> None:
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    raise Stopped(signal.Signals(signum).name)


def _watch(page: Page, endpoint: host.LocalEndpoint | None) -> None:
    """Return never: poll both servers until a signal raises Stopped, or raise UserError when one dies."""
    while True:
        time.sleep(0.5)
        if page.process.poll() is not None:
            raise UserError(f"pf flow serve stopped (exit {page.process.returncode}): {_last_error(page.endpoint.log)}")
        if endpoint is not None and not host.is_listening(endpoint.port):
            raise UserError(f"the local endpoint stopped answering: {_last_error(endpoint.log)}")


def _last_error(log: str) -> str:
    """The log's last line that names an error (else its last line), for a one-line message."""
    try:
        lines = [line.strip() for line in Path(log).read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return f"(no log at {log})"
    lines = [line for line in lines if line]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return f"{(errors or lines or ['(empty log)'])[-1][:300]} (log: {log})"


def run(args: argparse.Namespace) -> int:
    previous = {signum: signal.signal(signum, _on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _serve(args)
    except Stopped as stopped:  # during start-up: whatever had started is already stopped
        print(f"{stopped.args[0]}: stopped during start-up", file=sys.stderr)
        return 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _serve(args: argparse.Namespace) -> int:
    endpoint: host.LocalEndpoint | None = None
    if args.workspace:
        url, key = workspace_endpoint(args.workspace)
        where = f"the {args.workspace} workspace's online endpoint"
    elif args.endpoint_url:
        url, key = args.endpoint_url, os.environ.get(ENDPOINT_KEY_ENV) or None
        where = url
    else:
        model = check_model(Path(args.model) if args.model else default_model(), given=bool(args.model))
        print(f"starting the local endpoint for {model} ...", flush=True)
        endpoint = host.start(model, args.endpoint_port, state_dir=state_dir())
        url, key, where = endpoint.url, None, f"{endpoint.url} (pid {endpoint.pid})"
    page: Page | None = None
    try:
        print(f"model endpoint: {where}", flush=True)
        page = start_page(url, key, args.port)
        source = active().relative(page_flow())
        print(f"chat page: {page.url}  (pf flow serve --source {source} --engine {ENGINE}, pid {page.process.pid})")
        print("open it in a browser; Ctrl-C stops both servers", flush=True)
        _watch(page, endpoint)
    except Stopped as stopped:
        print(f"\n{stopped.args[0]}: stopping", flush=True)
    finally:
        ports = []
        if page is not None:
            stop_page(page)
            ports.append(page.endpoint.port)
        if endpoint is not None:
            host.stop_endpoint(endpoint)
            ports += [endpoint.port, endpoint.upstream_port]
    busy = [p for p in ports if host.is_listening(p)]
    if busy:
        raise UserError(f"stopped, but port(s) {busy} on {host.HOST} still accept connections")
    for log in [page.endpoint.log] + ([endpoint.log] if endpoint else []):  # kept only when something failed
        Path(log).unlink(missing_ok=True)
    print(f"stopped; nothing listens on {host.HOST} port(s) {', '.join(map(str, ports))}")
    return 0
