"""Hostile requests against one real local endpoint (the fine-tuned tiny model behind MLflow and the adapter).

One server for the module, started and stopped through the CLI (`python -m tools serve start/stop --port P`), with
short timeouts and a small body cap. Every class of bad request gets a 4xx with a JSON message on a complete HTTP
response (never a dropped connection, never a 5xx); after each the endpoint answers a normal request; `serve stop`
leaves none of the processes it started and nothing listening.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tools.serve import process as serve

from .conftest import REPO_ROOT

CAP = 256 * 1024
IDLE, READ = 1.5, 4.0
OK_BODY = {
    "input_data": {
        "input_string": [[{"role": "user", "content": "What is the capital of France?"}]],
        "parameters": {"do_sample": False, "max_new_tokens": 4},
    }
}


@dataclass
class Running:
    port: int
    pid: int
    url: str


def _cli(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools", "serve", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def endpoint(finetuned_model: Path) -> Iterator[Running]:
    port = serve.free_port()
    done = _cli("start", "--model", str(finetuned_model), "--port", str(port), "--max-body-bytes", str(CAP),
                "--idle-timeout", str(IDLE), "--read-timeout", str(READ), "--request-timeout", "60")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (record,) = [e for e in serve.recorded() if e.port == port]
    try:
        yield Running(port, record.pid, record.url)
    finally:
        _cli("stop", "--port", str(port))  # a no-op error when the last test already stopped it


def exchange(port: int, data: bytes, wait: float = 15.0, shut: bool = False) -> bytes:
    """Send raw bytes, read until the server closes (or ``wait`` passes); return everything received."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        if data:
            sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        with_deadline = time.monotonic() + wait
        while time.monotonic() < with_deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received


def parse(response: bytes) -> tuple[int, dict]:
    """Status and JSON body of one complete HTTP response (fails on a dropped or non-JSON answer)."""
    assert response.startswith(b"HTTP/1."), f"no HTTP response: {response[:200]!r}"
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(
        next(line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    assert len(body) == length, (length, body[:200])
    return status, json.loads(body)


def post(port: int, body: bytes, headers: str = "") -> tuple[int, dict]:
    head = f"POST /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    return parse(exchange(port, head.encode() + body))


def still_serving(endpoint: Running) -> None:
    status, payload = post(endpoint.port, json.dumps(OK_BODY).encode())
    assert status == 200 and isinstance(payload["output"], str), payload


MESSAGES = [{"role": "user", "content": "hi"}]
MALFORMED = {
    "parameters list": (
        {"input_data": {"input_string": [MESSAGES], "parameters": [1]}},
        "input_data.parameters: expected an object",
    ),
    "max_tokens string": ({"messages": MESSAGES, "max_tokens": "abc"}, "max_tokens: expected an integer"),
    "max_new_tokens bool": (
        {"input_data": {"input_string": [MESSAGES], "parameters": {"max_new_tokens": True}}},
        "max_new_tokens: expected an integer",
    ),
    "temperature NaN": (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "not JSON"),
    "top_p out of range": ({"messages": MESSAGES, "top_p": 7}, "top_p: expected a number in (0, 1]"),
    "deep nesting": (b"[" * 50000 + b"]" * 50000, "nests deeper than"),
    "deep nesting in a field": (
        b'{"messages": ' + b'{"a": ' * 200 + b"1" + b"}" * 200 + b"}",
        "nests deeper than",
    ),
    "not utf-8": (b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', "not UTF-8"),
    "lone surrogate": (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "surrogate"),
    "not json": (b"hello there", "not JSON"),
    "top-level array": (b"[1, 2, 3]", "JSON array"),
    "top-level string": (b'"input_data"', "JSON string"),
    "empty body": (b"", "empty"),
    "input_data string": ({"input_data": "x"}, "input_data: expected an object"),
    "no conversations": ({"input_data": {"input_string": []}}, "non-empty list of conversations"),
    "assistant last": ({"input_data": {"input_string": [[{"role": "assistant", "content": "x"}]]}}, "user turn"),
    "messages not list": ({"messages": "hi"}, "messages: expected a non-empty list"),
    "record messages": ({"dataframe_records": [{"messages": 5}]}, "dataframe_records[0].messages"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_body_gets_400_with_a_message(endpoint: Running, name: str) -> None:
    body, expected = MALFORMED[name]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, payload = post(endpoint.port, raw)
    assert status == 400 and expected in payload["message"], payload


@pytest.mark.parametrize(("value", "status"), [("abc", 400), ("-5", 400), ("1e3", 400), ("5, 5", 400)])
def test_bad_content_length_is_400(endpoint: Running, value: str, status: int) -> None:
    raw = f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n{{}}".encode()
    code, payload = parse(exchange(endpoint.port, raw))
    assert code == status and "Content-Length" in payload["message"]


def test_chunked_and_missing_length_are_411(endpoint: Running) -> None:
    chunked = b"POST /score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    assert parse(exchange(endpoint.port, chunked))[0] == 411
    assert parse(exchange(endpoint.port, b"POST /score HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 411


def test_oversized_body_is_refused_from_its_length_before_it_is_sent(endpoint: Running) -> None:
    # Only the headers go out: a server that waited for the 10 MB would answer 408 (idle), not 413.
    head = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n"
    status, payload = parse(exchange(endpoint.port, head, shut=True))
    assert status == 413 and f"at most {CAP} bytes" in payload["message"]


def test_a_10_mb_message_gets_413_not_a_reset(endpoint: Running) -> None:
    big = json.dumps({"messages": [{"role": "user", "content": "a" * (10 * 1024 * 1024)}]}).encode()
    response = requests.post(endpoint.url, data=big, headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 413 and "max-body-bytes" in response.json()["message"]
    still_serving(endpoint)


def test_prompt_longer_than_the_context_names_the_limit(endpoint: Running) -> None:
    long = {"messages": [{"role": "user", "content": "word " * 3000}]}
    status, payload = post(endpoint.port, json.dumps(long).encode())
    assert status == 400 and "context is 2048 tokens" in payload["message"], payload
    assert "max_position_embeddings" in payload["message"]
    greedy_long = {"input_data": {"input_string": [MESSAGES], "parameters": {"max_new_tokens": 5000}}}
    status, payload = post(endpoint.port, json.dumps(greedy_long).encode())
    assert status == 400 and "max_new_tokens 5000" in payload["message"] and "2048" in payload["message"]


def test_request_line_and_method_garbage_get_json_4xx(endpoint: Running) -> None:
    status, payload = parse(exchange(endpoint.port, b"\x00\x01\x02 garbage\r\n\r\n"))
    assert 400 <= status < 500 and payload["message"]
    status, payload = parse(exchange(endpoint.port, b"PUT /score HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 405 and "POST /score" in payload["message"]
    status, _ = parse(exchange(endpoint.port, b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
    assert status == 404
    many = b"".join(b"X-%d: y\r\n" % i for i in range(200))
    status, payload = parse(exchange(endpoint.port, b"GET /ping HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"))
    assert status == 431 and "headers" in payload["message"]
    for blank in (b"\r\n\r\n", b"   \r\n\r\n", b"\t\r\n", b"\r\n \r\n"):  # http.server closed these silently
        status, payload = parse(exchange(endpoint.port, blank))
        assert status == 400 and "request line is blank" in payload["message"], blank
    status, _ = parse(exchange(endpoint.port, b"\r\nGET /ping HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert status == 200  # one empty line before the request line is ignored (RFC 9112, section 2.2)


def test_a_silent_connection_is_closed(endpoint: Running) -> None:
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=30) as sock:
        assert sock.recv(1) == b""  # closed by the server (a hang would raise TimeoutError after 30 s)


@pytest.mark.parametrize(
    "partial", [b"POST /score HTTP/1.1\r\nHost: x\r\n", b"POST /score HTTP/1.1\r\nContent-Length: 50\r\n\r\n{"]
)
def test_a_stalled_request_gets_408_and_is_closed(endpoint: Running, partial: bytes) -> None:
    status, payload = parse(exchange(endpoint.port, partial, wait=30))
    assert status == 408 and "idle-timeout" in payload["message"]


def test_a_trickled_request_is_cut_at_the_read_deadline(endpoint: Running) -> None:
    line = b"POST /score HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=30) as sock:
        received = b""
        for byte in line:  # one byte per 0.5 s: under the idle timeout, never finishing
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sock.settimeout(0.5)
            try:
                received += sock.recv(65536)
            except TimeoutError:
                continue
            if received:
                break
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            received += chunk
    status, payload = parse(received)
    assert status == 408 and "read-timeout" in payload["message"]


def test_a_client_that_leaves_mid_generation_does_not_take_the_endpoint_down(endpoint: Running) -> None:
    body = json.dumps({"messages": MESSAGES, "max_tokens": 1500, "top_k": 1}).encode()
    head = f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=5) as sock:
        sock.sendall(head + body)
    still_serving(endpoint)


def test_serve_stop_reaps_every_process_it_started(endpoint: Running) -> None:
    import psutil

    still_serving(endpoint)
    leader = psutil.Process(endpoint.pid)
    family = [leader, *leader.children(recursive=True)]
    assert len(family) >= 2  # the adapter and MLflow's server (and its uvicorn)
    (record,) = [e for e in serve.recorded() if e.port == endpoint.port]
    done = _cli("stop", "--port", str(endpoint.port))
    assert done.returncode == 0 and f"port {endpoint.port} is free" in done.stdout, done.stderr
    for process in family:
        assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE, process
    assert not serve.is_listening(endpoint.port) and not serve.is_listening(record.upstream_port)
    assert [e for e in serve.recorded() if e.port == endpoint.port] == []
