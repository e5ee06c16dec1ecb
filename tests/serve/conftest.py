"""Fixtures for the serve/score/flow tests: a scriptable stub endpoint, a made-up key, a fine-tuned tiny model."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tools.core.repo import REPO_ROOT  # noqa: E402 - one source for the root


@dataclass
class Reply:
    """One scripted answer: status, JSON body, extra headers, delay before answering, or a dropped connection."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"output": "stub answer"})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


class StubEndpoint:
    """A stdlib HTTP server on 127.0.0.1 (own thread) that answers from a script; the last reply repeats."""

    def __init__(self) -> None:
        self.script: list[Reply] = [Reply()]
        self.seen: list[Seen] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802 - MLflow's /ping
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.seen.append(Seen(self.path, dict(self.headers), json.loads(raw or b"null")))
                reply = stub.script.pop(0) if len(stub.script) > 1 else stub.script[0]
                if reply.reset:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                time.sleep(reply.delay)
                data = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/score"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, *replies: Reply) -> None:
        self.script = list(replies)
        self.seen.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def stub() -> Iterator[StubEndpoint]:
    server = StubEndpoint()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def fake_key() -> str:
    """A made-up key assembled at run time (never a literal in the repo)."""
    return "test" + secrets.token_hex(16)


def _run(command: list[str], cwd: Path, timeout: int, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        output = f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        raise AssertionError(f"{' '.join(command[:3])} failed ({done.returncode}):\n{output}")


@pytest.fixture(scope="session")
def finetuned_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real chain in miniature: tiny Phi-3 base -> fine_tune.py (a few SFT steps) -> MLflow llm/v1/chat model."""
    root = tmp_path_factory.mktemp("finetuned")
    base, model = root / "base", root / "model"
    _run([sys.executable, "-m", "tools", "tiny-model", "--out", str(base), "--seed", "0"], REPO_ROOT, 300)
    env_free = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    command = [
        sys.executable, str(REPO_ROOT / "components/finetune-sft/src/fine_tune.py"),
        "--train-file", str(REPO_ROOT / "data/sample/train_sft.jsonl"), "--model-name-or-path", str(base),
        "--output-dir", str(model), "--work-dir", str(root / "work"), "--max-steps", "4", "--max-length", "256",
        "--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "1", "--learning-rate", "1e-3",
        "--dataset-num-proc", "1", "--seed", "0",
    ]  # fmt: skip
    _run(command, root, 600, env_free)
    assert (model / "MLmodel").is_file()
    return model


class RecordingProxy:
    """A stdlib HTTP forwarder on 127.0.0.1 in front of a real endpoint: records each request body and the JSON the
    endpoint answered. ``down()`` closes its listening socket (connections are refused, like an endpoint that is
    down) until ``up()`` binds the same port again."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.exchanges: list[tuple[Any, Any]] = []
        self.port = 0
        self._start()
        self.url = f"http://127.0.0.1:{self.port}/score"

    def _start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                import urllib.error
                import urllib.request

                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                request = urllib.request.Request(proxy.upstream, data=raw, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=120) as response:
                        status, data = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, data = error.code, error.read()
                proxy.exchanges.append((json.loads(raw or b"null"), json.loads(data or b"null")))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def down(self) -> None:
        if not self.running:
            return
        self.running = False
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def up(self) -> None:
        self._start()

    def close(self) -> None:
        self.down()
