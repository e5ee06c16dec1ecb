"""The local endpoint process: MLflow's scoring server behind a thin loopback proxy that also speaks Azure's body.

  python -m tools.serve.endpoint_host --model DIR --port P --upstream-port Q     (started by `python -m tools serve`)

It runs ``mlflow models serve -m DIR --env-manager local -h 127.0.0.1 -p Q`` as its child (same process group, so
`serve stop` ends both) and serves 127.0.0.1:P like an Azure ML managed online endpoint:

* ``POST /score`` (also ``/invocations``): an Azure foundation-model body (``input_data``) is converted to MLflow's
  chat body, scored, and answered as ``{"output": "<answer>"}`` (a list of those for several conversations);
  any other body (MLflow chat, ``dataframe_records``, ...) goes to MLflow unchanged. A model failure answers 424,
  as Azure does.
* ``GET /ping`` (also ``/``, ``/health``): 200 once MLflow's server is ready, 503 before.
* Key auth when ``LOCAL_ENDPOINT_KEY`` is set in the environment: ``Authorization: Bearer <key>``, else 401.

SIGTERM/SIGINT stop the proxy and the MLflow server; if the MLflow server dies, the proxy exits too.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tools.serve import scoring_client

KEY_ENV = "LOCAL_ENDPOINT_KEY"
HOST = "127.0.0.1"
SCORE_PATHS = ("/score", "/invocations", "/")
HEALTH_PATHS = ("/ping", "/health", "/", "/liveness", "/readiness")
UPSTREAM_TIMEOUT_S = 600


def mlflow_command(model_dir: str, upstream_port: int) -> list[str]:
    """The MLflow scoring server command line (local env manager, loopback only)."""
    return [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", model_dir, "--env-manager", "local", "-h", HOST, "-p", str(upstream_port),
    ]  # fmt: skip


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, upstream_port: int, key: str | None) -> None:
        super().__init__((HOST, port), _Handler)
        self.upstream = f"http://{HOST}:{upstream_port}"
        self.key = key


class _Handler(BaseHTTPRequestHandler):
    server: _Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.command == "GET" and self.path.split("?")[0] in HEALTH_PATHS:
            return  # readiness polling would drown the log
        sys.stderr.write(f"endpoint_host: {self.address_string()} {format % args}\n")

    # ----------------------------------------------------------------------------------------- replies

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._reply(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def _upstream(self, path: str, data: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.server.upstream + path,
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT_S) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    # ----------------------------------------------------------------------------------------- routes

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?")[0] not in HEALTH_PATHS:
            self._json(404, {"message": f"no route {self.path}"})
            return
        try:
            status, _ = self._upstream("/ping")
        except OSError:
            status = 503
        self._json(200 if status == 200 else 503, {"status": "ready" if status == 200 else "starting"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.split("?")[0] not in SCORE_PATHS:
            self._json(404, {"message": f"no route {self.path}; POST /score"})
            return
        if self.server.key is not None:
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.server.key}".encode()):
                self._json(401, {"message": "key_auth_access_denied"})
                return
        try:
            body = json.loads(raw or b"null")
        except ValueError as error:
            self._json(400, {"message": f"bad request: the body is not JSON ({error})"})
            return
        try:
            if not (isinstance(body, dict) and "input_data" in body):  # any MLflow body: passed through as is
                status, payload = self._upstream("/invocations", raw)
                if status >= 500:
                    self._json(424, {"message": _message(payload)})
                else:
                    self._reply(status, payload)
                return
            self._score_azure(body)
        except OSError as error:
            self._json(503, {"message": f"model server unavailable: {error}"})

    def _score_azure(self, body: dict) -> None:
        data = body["input_data"]
        conversations = data.get("input_string") if isinstance(data, dict) else None
        if not isinstance(conversations, list) or not conversations:
            self._json(400, {"message": "input_data.input_string: expected a list of conversations"})
            return
        outputs = []
        for conversation in conversations:
            single = {"input_data": {"input_string": [conversation], "parameters": data.get("parameters") or {}}}
            try:
                chat = scoring_client.azure_to_mlflow(single)
            except scoring_client.ScoringError as error:
                self._json(400, {"message": str(error)})
                return
            status, payload = self._upstream("/invocations", json.dumps(chat).encode("utf-8"))
            if status != 200:
                self._json(424 if status >= 500 else status, {"message": _message(payload)})
                return
            try:
                outputs.append({"output": scoring_client.extract_answer(json.loads(payload))})
            except (ValueError, scoring_client.ScoringError) as error:
                self._json(424, {"message": f"model output not understood: {error}"})
                return
        self._json(200, outputs[0] if len(outputs) == 1 else outputs)


def _message(payload: bytes) -> str:
    try:
        decoded = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")[:500]
    if isinstance(decoded, dict) and "message" in decoded:
        return str(decoded["message"])[:500]
    return json.dumps(decoded)[:500]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.serve.endpoint_host", description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args(argv)

    try:
        proxy = _Proxy(args.port, args.upstream_port, os.environ.pop(KEY_ENV, None) or None)
    except OSError as error:
        print(f"endpoint_host: cannot listen on {HOST}:{args.port}: {error}", file=sys.stderr)
        return 3
    env = dict(os.environ)
    # MLflow starts `uvicorn` by name: the interpreter's bin folder must be on PATH.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    child = subprocess.Popen(mlflow_command(args.model, args.upstream_port), env=env, stdin=subprocess.DEVNULL)
    exit_code = {"code": 0}

    def shutdown(code: int) -> None:
        exit_code["code"] = code
        threading.Thread(target=proxy.shutdown, daemon=True).start()

    def on_signal(signum: int, _frame: object) -> None:
        shutdown(0)

    def watch_child() -> None:
        code = child.wait()
        print(f"endpoint_host: the MLflow server exited with code {code}", file=sys.stderr)
        shutdown(1)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=watch_child, daemon=True).start()
    print(f"endpoint_host: listening on http://{HOST}:{args.port}/score, MLflow on port {args.upstream_port}",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        proxy.serve_forever(poll_interval=0.2)
    finally:
        proxy.server_close()
        stop_descendants()
        child.wait()
    return exit_code["code"]


def stop_descendants(timeout: float = 10.0) -> None:
    """Terminate every process this one started (MLflow and its uvicorn), killing stragglers after ``timeout``."""
    import psutil

    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for process in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


if __name__ == "__main__":
    sys.exit(main())
