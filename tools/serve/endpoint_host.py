"""The local endpoint process: MLflow's scoring server behind a thin loopback proxy that also speaks Azure's body.

  python -m tools.serve.endpoint_host --model DIR --port P --upstream-port Q     (started by `python -m tools serve`)

It runs ``mlflow models serve -m DIR --env-manager local -h 127.0.0.1 -p Q`` as its child (same process group, so
`serve stop` ends both) and serves 127.0.0.1:P like an Azure ML managed online endpoint:

* ``POST /score`` (also ``/invocations``): an Azure foundation-model body (``input_data``) is converted to MLflow's
  chat body, scored, and answered as ``{"output": "<answer>"}`` (a list of those for several conversations);
  any other body (MLflow chat, ``dataframe_records``, ...) goes to MLflow unchanged.
* ``GET /ping`` (also ``/``, ``/health``): 200 once MLflow's server and the tokenizer are ready, 503 before.
* Key auth when ``LOCAL_ENDPOINT_KEY`` is set in the environment: ``Authorization: Bearer <key>``, else 401.

Hostile input (tools/serve/request_body.py checks the body): every answer is JSON ``{"message": ...}``, and a
client's mistake is a 4xx, never a 5xx or a dropped connection:

* 413 for a body over ``--max-body-bytes``, refused from its ``Content-Length`` before it is read (the rest is
  read and thrown away, bounded, so the client sees the answer); 411 without a length; 400 for a malformed one;
* 400 for a body that is not UTF-8 JSON, nests too deep, is not an object, or has a parameter of the wrong type;
* 400 when a prompt (plus ``max_new_tokens``) exceeds the model's context (tools/serve/model_context.py), counted
  no further than the context allows (bounded memory, whatever the body holds);
* 400 for a blank request line (only whitespace or empty lines), as for any malformed request line;
* a connection that sends nothing for ``--idle-timeout`` s is closed; one whose request (headers and body) is not
  complete ``--read-timeout`` s after its first byte gets 408 and is closed;
* the status codes Azure documents for online endpoints (learn.microsoft.com/azure/machine-learning/
  how-to-troubleshoot-online-endpoints, "HTTP status codes"): 408 when the model takes longer than the request
  timeout (``request_timeout_ms``; here ``--request-timeout``), 424 when the model server fails, 429 for more
  than 2 x max_concurrent_requests_per_instance (1) pending requests (here ``--max-pending``). The request timeout
  and the pending cap cover all the work after the body is read (decoding, the prompt-length count, the model
  calls), so a burst of large bodies cannot make a client wait past its timeout or queue a small request unseen.

Generation is bounded, not cancelled: MLflow runs ``predict`` in a worker thread that nothing can interrupt, so a
client that leaves cannot stop the token loop. What is bounded instead: each generation stops after
``--request-timeout`` less a margin (transformers' ``max_time``, given to the model through MLflow's
``SERVING_MODEL_CONFIG``), and after the context's worth of tokens (the prompt-length cap). When the client leaves,
the proxy stops waiting, sends none of a body's remaining conversations, and the slot is freed when the model
returns.

SIGTERM/SIGINT stop the proxy and the MLflow server; if the MLflow server dies, the proxy exits too.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import io
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tools.serve import scoring_client
from tools.serve.model_context import Context, PromptCounter, context_of
from tools.serve.request_body import BodyError, UpstreamRequest, content_length, decode, to_upstream

LOCAL_KEY_ENV = "LOCAL_ENDPOINT_KEY"  # the local endpoint's key, set by tools.serve.process
HOST = "127.0.0.1"
SCORE_PATHS = ("/score", "/invocations", "/")
HEALTH_PATHS = ("/ping", "/health", "/", "/liveness", "/readiness")
SERVING_MODEL_CONFIG = "SERVING_MODEL_CONFIG"  # mlflow.pyfunc.scoring_server: JSON model_config for load_model
GENERATION_MARGIN_S = 2.0  # generation stops this long before the request timeout, so its answer still arrives
DRAIN_MAX_BYTES = 256 * 1024 * 1024  # after a 413, at most this much of the refused body is read and dropped


@dataclass(frozen=True)
class Limits:
    """The endpoint's bounds (all seconds or bytes); defaults match the repo's deployment (request_timeout_ms
    90000, max_concurrent_requests_per_instance 1, one instance)."""

    max_body_bytes: int = 4 * 1024 * 1024
    idle_timeout: float = 10.0
    read_timeout: float = 30.0
    request_timeout: float = 90.0
    max_pending: int = 2
    queue_wait: float = 0.5
    max_connections: int = 64

    @property
    def max_time(self) -> float:
        """transformers' ``max_time`` for one generation."""
        return max(0.5, self.request_timeout - GENERATION_MARGIN_S)


def mlflow_command(model_dir: str, upstream_port: int, limits: Limits | None = None) -> list[str]:
    """The MLflow scoring server command line (local env manager, loopback only, its own timeout past ours)."""
    timeout = math.ceil((limits or Limits()).request_timeout) + 5
    return [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", model_dir, "--env-manager", "local", "-h", HOST, "-p", str(upstream_port), "-t", str(timeout),
    ]  # fmt: skip


def mlflow_env(base: dict[str, str], limits: Limits, transformers_model: bool) -> dict[str, str]:
    """The MLflow server's environment: the interpreter's bin on PATH (MLflow starts ``uvicorn`` by name) and, for a
    transformers model, ``max_time`` merged into ``SERVING_MODEL_CONFIG`` (passed to every generate call)."""
    env = dict(base)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if transformers_model:
        try:
            config = json.loads(env.get(SERVING_MODEL_CONFIG) or "{}")
        except ValueError:
            config = {}
        config = config if isinstance(config, dict) else {}
        config["max_time"] = limits.max_time
        env[SERVING_MODEL_CONFIG] = json.dumps(config)
    return env


class _Stalled(Exception):
    """The client sent nothing for the idle timeout, or not its whole request within the read timeout."""

    def __init__(self, started: bool, reason: str) -> None:
        super().__init__(reason)
        self.started = started
        self.reason = reason


class _DeadlineReader(io.RawIOBase):
    """The connection's raw reader: every receive waits at most the idle timeout, and none runs past the read
    deadline (``read_timeout`` after the request's first byte), so a trickling client cannot hold a thread."""

    def __init__(self, sock: socket.socket, limits: Limits) -> None:
        self._sock = sock
        self._limits = limits
        self.first_byte: float | None = None

    def begin(self) -> None:
        self.first_byte = None

    def _late(self) -> str:
        return f"the request was not complete {self._limits.read_timeout:g} s after its first byte (--read-timeout)"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.first_byte is None:
            timeout = self._limits.idle_timeout
        else:
            timeout = min(self._limits.idle_timeout, self.first_byte + self._limits.read_timeout - time.monotonic())
            if timeout <= 0:
                raise _Stalled(True, self._late())
        self._sock.settimeout(timeout)
        try:
            count = self._sock.recv_into(buffer)
        except TimeoutError:
            if self.first_byte is not None and time.monotonic() >= self.first_byte + self._limits.read_timeout:
                raise _Stalled(True, self._late()) from None
            idle = f"nothing received for {self._limits.idle_timeout:g} s (--idle-timeout) in the middle of a request"
            raise _Stalled(self.first_byte is not None, idle) from None
        if count and self.first_byte is None:
            self.first_byte = time.monotonic()
        return count


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        port: int,
        upstream_port: int,
        key: str | None,
        limits: Limits | None = None,
        context: Context | None = None,
        counter: PromptCounter | None = None,
    ) -> None:
        super().__init__((HOST, port), _Handler)
        self.upstream = f"http://{HOST}:{upstream_port}"
        self.key = key
        self.limits = limits or Limits()
        self.context = context
        self.counter = counter
        self.slots = threading.BoundedSemaphore(self.limits.max_pending)
        self.connections = threading.BoundedSemaphore(self.limits.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.connections.acquire(blocking=False):  # too many open connections: answer and close at once
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(_raw_response(429, "too many open connections to this endpoint; retry later"))
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()


def _raw_response(status: int, message: str) -> bytes:
    body = json.dumps({"message": message}).encode("utf-8")
    head = (f"HTTP/1.1 {status} {BaseHTTPRequestHandler.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
    return head.encode("latin-1") + body


class _Handler(BaseHTTPRequestHandler):
    server: _Proxy
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # a malformed request line still gets a status line (0.9 answers have none)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.command == "GET" and self.path.split("?")[0] in HEALTH_PATHS:
            return  # readiness polling would drown the log
        sys.stderr.write(f"endpoint_host: {self.address_string()} {format % args}\n")

    # ----------------------------------------------------------------------------------------- connection

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(self.connection, self.server.limits)
        self.rfile = io.BufferedReader(self._reader)

    def handle(self) -> None:
        self.close_connection = True
        try:
            self.handle_one_request()
            while not self.close_connection:
                self.handle_one_request()
        except _Stalled as stalled:
            if stalled.started:  # part of a request came: say why it is dropped
                self._json(408, {"message": stalled.reason}, close=True)
        except OSError:
            pass  # the client reset the connection: nobody to answer

    def handle_one_request(self) -> None:
        self._reader.begin()
        # what logging and replies read, set before the request line arrives (a stall can cut it short)
        self.requestline, self.command, self.request_version = "", "", self.default_request_version
        super().handle_one_request()

    def parse_request(self) -> bool:
        """http.server closes the connection without a word on a request line of only whitespace; here it is a 400.
        One empty line before the request line is skipped (RFC 9112, section 2.2); a second is a blank request."""
        if self.raw_requestline in (b"\r\n", b"\n"):
            self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline.strip():
            self.requestline = ""
            self.send_error(400, "the request line is blank: expected 'METHOD /path HTTP/1.1' (e.g. POST /score)")
            return False
        return super().parse_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, too many headers, unknown method) as JSON."""
        if code == 501:  # an unknown method is the client's mistake: 405, not a 5xx
            code, message = 405, f"method {str(self.command)[:20]!r} is not allowed here: GET /ping, POST /score"
        text = message or self.responses.get(code, ("error",))[0]
        self.log_error("code %d, message %s", code, text)
        self._json(code, {"message": f"{text}: {explain}" if explain and explain not in text else text}, close=True)

    # ----------------------------------------------------------------------------------------- replies

    def _reply(self, status: int, body: bytes, content_type: str = "application/json", close: bool = False) -> None:
        if close:
            self.close_connection = True
        try:
            self.connection.settimeout(self.server.limits.idle_timeout)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _json(self, status: int, payload: Any, close: bool = False) -> None:
        self._reply(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), close=close)

    def _upstream(self, path: str, data: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.server.upstream + path,
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    # ----------------------------------------------------------------------------------------- routes

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if (self.headers.get("Content-Length") or "0").strip() != "0" or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # a GET body is never read: it must not be taken for the next request
        if self.path.split("?")[0] not in HEALTH_PATHS:
            self._json(404, {"message": f"no route {self.path[:200]}"})
            return
        try:
            status, _ = self._upstream("/ping", timeout=2.0)
        except OSError:
            status = 503
        counter = self.server.counter
        ready = status == 200 and (counter is None or counter.loaded.is_set())
        self._json(200 if ready else 503, {"status": "ready" if ready else "starting"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?")[0] not in SCORE_PATHS:
            self._json(404, {"message": f"no route {self.path[:200]}; POST /score"}, close=True)
            return
        if self.server.key is not None:
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode("utf-8", "replace"), f"Bearer {self.server.key}".encode()):
                self._json(401, {"message": "key_auth_access_denied"}, close=True)
                return
        limits = self.server.limits
        try:
            length = content_length(
                self.headers.get("Content-Length"), self.headers.get("Transfer-Encoding"), limits.max_body_bytes
            )
        except BodyError as error:
            self._json(error.status, {"message": error.message}, close=True)
            if error.status == 413:
                self._discard(self.headers.get("Content-Length", "0"))
            return
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            self._json(400, {"message": f"the body ended after {len(raw)} of {length} bytes"}, close=True)
            return
        self._run_job(_Job(self.server, raw, time.monotonic() + limits.request_timeout))

    def _run_job(self, job: _Job) -> None:
        """Everything after the body is read (JSON decoding, the prompt-length count, the model calls) runs in a
        worker that holds one of ``--max-pending`` slots; this thread answers 429 when none frees within the queue
        wait, 408 at the request deadline, and stops waiting when the client leaves."""
        limits = self.server.limits
        if not self.server.slots.acquire(timeout=limits.queue_wait):
            message = f"too many pending requests (at most {limits.max_pending} at a time); retry with backoff"
            self._json(429, {"message": message})
            return
        threading.Thread(target=job.run, daemon=True).start()  # releases the slot when it ends
        while not job.done.wait(0.05):
            if time.monotonic() > job.deadline:
                job.cancel.set()
                message = (f"no answer within the request timeout ({limits.request_timeout:g} s, --request-timeout; "
                           "Azure: request_settings.request_timeout_ms)")  # fmt: skip
                self._json(408, {"message": message})
                return
            if self._client_gone():
                job.cancel.set()
                self.close_connection = True
                self.log_message("client left before its answer; stopped waiting for the model")
                return
        status, payload = job.answer
        self._reply(status, payload)

    def _discard(self, declared: str) -> None:
        """Read and drop what the client still sends of a refused body (bounded in bytes and by the read
        deadline), so it reads our 413 instead of a reset."""
        left = min(int(declared.strip()), DRAIN_MAX_BYTES) if declared.strip().isdigit() else 0
        with contextlib.suppress(_Stalled, OSError):
            while left > 0:
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)

    def _client_gone(self) -> bool:
        """True when the client closed its side (readable with nothing to read) or reset the connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True


class _Job:
    """One scoring request after its body is read, run in a worker thread that holds a pending-request slot (taken
    by the handler) and releases it when the work ends, the model's answer included: decoding, the prompt-length
    count (bounded: tokens past the context are not counted, see PromptCounter.count_within) and one model call per
    conversation. ``answer`` is ``(status, JSON bytes)``; ``cancel`` (the deadline passed, the client left) stops it
    before the next conversation or prompt chunk."""

    def __init__(self, server: _Proxy, raw: bytes, deadline: float) -> None:
        self.server, self.raw, self.deadline = server, raw, deadline
        self.cancel = threading.Event()
        self.done = threading.Event()
        self.answer: tuple[int, bytes] = (500, b"{}")

    def run(self) -> None:
        try:
            self.answer = self._answer()
        except BodyError as error:
            self.answer = _payload(error.status, error.message)
        except TimeoutError as error:
            self.answer = _payload(408, str(error))
        except OSError as error:
            self.answer = _payload(503, f"model server unavailable: {error}")
        except Exception as error:  # noqa: BLE001 - the worker must always answer; the client gets a JSON 500
            self.answer = _payload(500, f"internal error: {type(error).__name__}")
        finally:
            self.server.slots.release()
            self.done.set()

    def _answer(self) -> tuple[int, bytes]:
        request = to_upstream(decode(self.raw))
        self._check_prompts(request)
        outputs = []
        for call in request.calls:
            if self.cancel.is_set():
                return 408, b"{}"  # nobody reads it: the handler already answered
            status, payload = self._call(call)
            if not request.azure or status != 200:
                return _forwarded(status, payload)
            try:
                outputs.append({"output": scoring_client.extract_answer(json.loads(payload))})
            except (ValueError, scoring_client.ScoringError) as error:
                return _payload(424, f"model output not understood: {error}")
        return 200, json.dumps(outputs[0] if len(outputs) == 1 else outputs, ensure_ascii=False).encode("utf-8")

    def _check_prompts(self, request: UpstreamRequest) -> None:
        context, counter = self.server.context, self.server.counter
        if context is None or counter is None or not counter.loaded.is_set() or counter.error:
            return
        for index, (messages, max_new_tokens) in enumerate(request.conversations):
            if self.cancel.is_set():
                raise TimeoutError("stopped: the request was answered already")
            where = f"input_data.input_string[{index}]" if request.azure else f"conversation {index}"
            try:
                tokens, exact = counter.count_within(messages, context.tokens, self.deadline)
            except ValueError as error:
                raise BodyError(400, f"{where}: {error}") from None
            wanted = tokens + (max_new_tokens or 0)
            if tokens >= context.tokens or wanted > context.tokens:
                asked = f" plus max_new_tokens {max_new_tokens}" if max_new_tokens else ""
                size = f"{tokens}" if exact else f"at least {tokens}"
                raise BodyError(
                    400,
                    f"{where}: the prompt is {size} tokens{asked}; the model's context is {context.tokens} tokens "
                    f"({context.source}): shorten the conversation or lower max_new_tokens",
                )

    def _call(self, data: bytes) -> tuple[int, bytes]:
        wait = max(1.0, self.deadline - time.monotonic()) + 10  # MLflow's own 504 comes first
        request = urllib.request.Request(self.server.upstream + "/invocations", data=data, method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=wait) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def _payload(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"message": message}, ensure_ascii=False).encode("utf-8")


def _forwarded(status: int, payload: bytes) -> tuple[int, bytes]:
    """MLflow's answer as ours: 200 and 4xx as they are (always JSON), its timeout as 408, other 5xx as 424."""
    if status == 504:
        return _payload(408, f"the model did not answer in time: {_message(payload)}")
    if status >= 500:
        return _payload(424, _message(payload))
    if _is_json(payload):
        return status, payload
    return _payload(status if status >= 400 else 424, _message(payload))


def _is_json(payload: bytes) -> bool:
    try:
        json.loads(payload)
    except ValueError:
        return False
    return True


def _message(payload: bytes) -> str:
    try:
        decoded = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")[:500]
    if isinstance(decoded, dict) and "message" in decoded:
        return str(decoded["message"])[:500]
    return json.dumps(decoded)[:500]


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``Limits`` flags (shared with ``serve start``)."""
    defaults = Limits()
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=defaults.max_body_bytes,
        help=f"largest request body accepted, else 413 (default {defaults.max_body_bytes})",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=defaults.request_timeout,
        help=f"seconds to answer one request, else 408; generation stops just before "
        f"(default {defaults.request_timeout:g})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=defaults.idle_timeout,
        help=f"seconds a connection may send nothing (default {defaults.idle_timeout:g})",
    )
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=defaults.read_timeout,
        help=f"seconds to receive a whole request once it began, else 408 (default {defaults.read_timeout:g})",
    )
    parser.add_argument("--max-pending", type=int, default=defaults.max_pending,
                        help=f"requests scored at once, else 429 (default {defaults.max_pending})")  # fmt: skip


def limits_from(args: argparse.Namespace) -> Limits:
    values = {
        "max_body_bytes": args.max_body_bytes, "request_timeout": args.request_timeout,
        "idle_timeout": args.idle_timeout, "read_timeout": args.read_timeout, "max_pending": args.max_pending,
    }  # fmt: skip
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {value:g}")
    return Limits(**values)


def limit_flags(limits: Limits) -> list[str]:
    """``limits`` as this module's command-line flags (what ``serve start`` passes on)."""
    return [
        "--max-body-bytes", str(limits.max_body_bytes), "--request-timeout", repr(limits.request_timeout),
        "--idle-timeout", repr(limits.idle_timeout), "--read-timeout", repr(limits.read_timeout),
        "--max-pending", str(limits.max_pending),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.serve.endpoint_host", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    add_limit_arguments(parser)
    args = parser.parse_args(argv)
    try:
        limits = limits_from(args)
    except ValueError as error:
        parser.error(str(error))

    context = context_of(args.model)
    counter = PromptCounter(args.model) if context is not None else None
    try:
        key = os.environ.pop(LOCAL_KEY_ENV, None) or None
        proxy = _Proxy(args.port, args.upstream_port, key, limits, context, counter)
    except OSError as error:
        print(f"endpoint_host: cannot listen on {HOST}:{args.port}: {error}", file=sys.stderr)
        return 3
    env = mlflow_env(dict(os.environ), limits, transformers_model=context is not None)
    child = subprocess.Popen(mlflow_command(args.model, args.upstream_port, limits), env=env, stdin=subprocess.DEVNULL)
    if counter is not None:
        threading.Thread(target=_load_counter, args=(counter,), daemon=True).start()
        print(f"endpoint_host: prompt cap {context.tokens} tokens ({context.source})", file=sys.stderr, flush=True)
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


def _load_counter(counter: PromptCounter) -> None:
    counter.load()
    if counter.error:
        print(f"endpoint_host: no prompt-length cap: {counter.error}", file=sys.stderr, flush=True)


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
