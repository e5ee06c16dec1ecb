"""HTTP fuzz: seeded random hostile requests against one running local-endpoint adapter, bounded to seconds.

The endpoint is the real adapter (tools/serve/endpoint_host.py: framing, caps, timeouts, body checks, prompt-length
cap with a real transformers tokenizer) in front of a stand-in for MLflow's scoring server that answers every
valid chat body the way MLflow's llm/v1/chat model does (``chat.completion`` JSON). Each request is sent on a raw
socket; the promise checked: every request gets one complete HTTP response, 2xx or 4xx, with a JSON body; no
connection is dropped without one; the server answers a normal request at the end; this process's RSS grows less
than ``RSS_GROWTH_MB``. ``benchmarks/fuzz_http.py`` runs the same generator longer and prints the counts.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tools.serve import endpoint_host
from tools.serve.model_context import PromptCounter, context_of
from tools.serve.process import free_port

SEED = 1313
REQUESTS = 200
RSS_GROWTH_MB = 150
CONTEXT = 256
LIMITS = endpoint_host.Limits(max_body_bytes=64 * 1024, idle_timeout=0.5, read_timeout=1.0, request_timeout=5.0)
OK_BODY = {
    "input_data": {"input_string": [[{"role": "user", "content": "hello"}]], "parameters": {"max_new_tokens": 3}}
}

# --------------------------------------------------------------------------------------------- the endpoint

HOLD = "hold this request"


class _Held:
    """What the stand-in model does with a request whose last message is HOLD: counts it in and waits for release."""

    def __init__(self) -> None:
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()


HELD = _Held()


class _ChatModel(BaseHTTPRequestHandler):
    """MLflow's scoring server for an llm/v1/chat model, as seen from the adapter: /ping and /invocations."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, {})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not isinstance(body.get("messages"), list):
            self._send(400, {"error_code": "BAD_REQUEST", "message": "Failed to enforce schema"})
            return
        last = body["messages"][-1] if body["messages"] else {}
        if isinstance(last, dict) and last.get("content") == HOLD:  # held until the test releases it
            HELD.arrived.release()
            HELD.release.wait(30)
        answer = {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        }
        self._send(200, [answer])


def write_model(folder: Path) -> Path:
    """A transformers-flavoured MLflow model folder with a context of CONTEXT tokens and a word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer_dir = folder / "components" / "tokenizer"
    tokenizer_dir.mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "MLmodel").write_text("flavors:\n  transformers:\n    model_binary: model\n", encoding="utf-8")
    (folder / "model" / "config.json").write_text(json.dumps({"max_position_embeddings": CONTEXT}), encoding="utf-8")
    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tokenizer_dir / "tokenizer.json"))
    template = "{% for m in messages %}<s>{{ m['role'] }} {{ m['content'] }}</s>{% endfor %}<s>assistant"
    (tokenizer_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "bos_token": "<s>", "eos_token": "</s>",
        "model_max_length": 100000, "chat_template": template,
    }), encoding="utf-8")  # fmt: skip
    return folder


@dataclass
class Endpoint:
    port: int
    proxy: endpoint_host._Proxy


def serve(
    folder: Path, limits: endpoint_host.Limits = LIMITS, counter: Any = None
) -> Iterator[Endpoint]:
    """The adapter (with the model's context and tokenizer) in front of the chat stand-in, both in threads."""
    model = ThreadingHTTPServer(("127.0.0.1", 0), _ChatModel)
    model.daemon_threads = True
    if counter is None:
        counter = PromptCounter(folder)
        counter.load()
        assert counter.error is None, counter.error
    proxy = endpoint_host._Proxy(free_port(), model.server_address[1], None, limits, context_of(folder), counter)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in (model, proxy)]  # fmt: skip
    for thread in threads:
        thread.start()
    try:
        yield Endpoint(proxy.server_address[1], proxy)
    finally:
        for server in (proxy, model):
            server.shutdown()
            server.server_close()


# --------------------------------------------------------------------------------------------- hostile requests

MESSAGES = [{"role": "user", "content": "hi"}]
JUNK_VALUES: list[Any] = [None, True, -1, 0, 2**70, 1e308, -0.0, "abc", "", "\u0000", [], [1], {}, {"a": 1}, "9" * 400]


def _value(rng: random.Random) -> Any:
    return rng.choice(JUNK_VALUES + [rng.randint(-5, 5000), rng.random() * 3, "x" * rng.randint(0, 3000)])


def _body(rng: random.Random) -> bytes:
    """A JSON-ish body: a valid body with one field broken, a structural oddity, or raw junk."""
    kind = rng.randrange(10)
    if kind == 0:
        params = {
            k: _value(rng) for k in rng.sample(["temperature", "top_p", "top_k", "max_new_tokens", "do_sample"], 2)
        }
        return json.dumps({"input_data": {"input_string": [MESSAGES], "parameters": params}}).encode()
    if kind == 1:
        body: dict[str, Any] = {"messages": MESSAGES}
        body[rng.choice(["max_tokens", "temperature", "top_p", "n", "stream", "stop", "messages"])] = _value(rng)
        return json.dumps(body).encode()
    if kind == 2:
        conversation = [{"role": _value(rng), "content": _value(rng)} for _ in range(rng.randint(0, 3))]
        return json.dumps({"input_data": {"input_string": [conversation]}}).encode()
    if kind == 3:
        depth = rng.choice([10, 63, 65, 500, 20000])
        return b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if kind == 5:
        return json.dumps(
            {"messages": [{"role": "user", "content": "word " * rng.choice([10, 200, 300, 5000])}]}
        ).encode()
    if kind == 6:
        valid = json.dumps(OK_BODY).encode()
        cut = rng.randrange(len(valid))
        return valid[:cut] + bytes([rng.randrange(256)]) + valid[cut + 1 :]
    if kind == 7:
        return json.dumps(rng.choice([[1], "s", 5, None, True, [OK_BODY]])).encode()
    if kind == 8:
        return json.dumps({"dataframe_records": [{"messages": _value(rng), "max_tokens": _value(rng)}]}).encode()
    return b'{"messages": [{"role": "user", "content": "' + rng.choice([b"\\ud800", b"\xff", b"NaN", b"\\x"]) + b'"}]}'


FRAMING_CLASSES = {0: "bad-length", 1: "chunked", 2: "oversize", 3: "many-headers", 4: "short-body", 5: "garbage",
                   12: "blank-line"}  # fmt: skip


def request(rng: random.Random) -> tuple[bytes, bool, str]:
    """One raw request, whether the server must answer it (a request that stops short may just be closed), and its
    class (a framing class, else "body": a hostile body in a well-framed request)."""
    raw, must_answer, framing = _request(rng)
    return raw, must_answer, FRAMING_CLASSES.get(framing, "body")


def _request(rng: random.Random) -> tuple[bytes, bool, int]:
    body = _body(rng)
    framing = rng.randrange(13)
    if framing == 12:  # a request line of only whitespace or blank lines (http.server closed these silently)
        return rng.choice([b"\r\n\r\n", b"   \r\n\r\n", b"\t\r\n", b" \r\n", b"\r\n \r\n"]), True, framing
    routes = [("POST", "/invocations"), ("GET", "/ping"), ("PUT", "/score"), ("POST", "/x" * 300), ("BREW", "/")]
    method, path = rng.choice([("POST", "/score")] * 6 + routes)
    headers = ["Host: 127.0.0.1", "Content-Type: application/json"]
    if framing == 0:
        headers.append(f"Content-Length: {rng.choice(['abc', '-1', '', '1e3', '0x10', '99999999999999999999'])}")
    elif framing == 1:
        headers.append("Transfer-Encoding: chunked")
    elif framing == 2:
        headers.append(f"Content-Length: {rng.choice([10 * 1024 * 1024, LIMITS.max_body_bytes + 1])}")
        return ("\r\n".join([f"{method} {path} HTTP/1.1", *headers]) + "\r\n\r\n").encode(), True, framing
    elif framing == 3:
        headers.extend(f"X-{i}: {'v' * rng.randint(0, 50)}" for i in range(rng.choice([5, 99, 150])))
        headers.append(f"Content-Length: {len(body)}")
    elif framing == 4:  # the body is shorter than announced and the client stops: a 408 or a close
        headers.append(f"Content-Length: {len(body) + 10}")
    elif framing == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))) + b"\r\n\r\n", True, framing
    else:
        headers.append(f"Content-Length: {len(body)}")
    headers.append("Connection: close")
    raw = ("\r\n".join([f"{method} {path} HTTP/1.1", *headers]) + "\r\n\r\n").encode() + body
    return raw, framing != 4, framing


def exchange(port: int, raw: bytes, wait: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        with contextlib.suppress(OSError):  # refused mid-send: the answer is still readable
            sock.sendall(raw)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                return received
            received += chunk


def verdict(response: bytes) -> str:
    """``"<status>"`` for a complete 2xx/4xx JSON response, else a word saying what broke the promise."""
    if not response:
        return "dropped"
    head, _, body = response.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
        json.loads(body)
    except (ValueError, IndexError):
        return "not-json"
    return str(status) if 200 <= status < 500 else f"bad-status-{status}"


def fuzz(
    port: int,
    count: int,
    seed: int,
    on_case: Callable[[bytes, str], None] | None = None,
    by_class: Counter | None = None,
) -> Counter:
    """Send ``count`` seeded hostile requests; return how many got each verdict (``by_class``, when given, counts
    (class, verdict) pairs)."""
    rng = random.Random(seed)
    counts: Counter = Counter()
    for _ in range(count):
        raw, must_answer, kind = request(rng)
        outcome = verdict(exchange(port, raw))
        if outcome == "dropped" and not must_answer:
            outcome = "closed-short-body"
        counts[outcome] += 1
        if by_class is not None:
            by_class[(kind, outcome)] += 1
        if on_case is not None:
            on_case(raw, outcome)
    return counts


def burst(port: int, size: int, seed: int, max_body_bytes: int = LIMITS.max_body_bytes) -> Counter:
    """``size`` clients at once, each a large body just under the cap (a long prompt, a long list of conversations,
    a deep-but-allowed structure) or a small valid request; how many got each verdict."""
    rng = random.Random(seed)
    room = max_body_bytes - 300
    bodies = []
    for _ in range(size):
        kind = rng.randrange(4)
        if kind == 0:
            bodies.append(json.dumps(_chat("word " * (room // 5))).encode())
        elif kind == 1:
            turns = [[{"role": "user", "content": "x" * 40}]] * (room // 80)
            bodies.append(json.dumps({"input_data": {"input_string": turns}}).encode())
        elif kind == 2:
            bodies.append(json.dumps(_chat(rng.choice(["\u4e2d", "\U0001f600", "a b "]) * (room // 16))).encode())
        else:
            bodies.append(json.dumps(OK_BODY).encode())
    counts: Counter = Counter()
    lock = threading.Lock()

    def one(body: bytes) -> None:
        head = b"POST /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        outcome = verdict(exchange(port, head + body, 60))
        with lock:
            counts[outcome] += 1

    threads = [threading.Thread(target=one, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return counts


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


FAILURES = ("dropped", "not-json")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    yield from serve(write_model(tmp_path_factory.mktemp("fuzz-model")))


def test_hostile_requests_always_get_a_json_4xx_and_the_endpoint_survives(endpoint: Endpoint) -> None:
    before = rss_mb()
    bad: list[tuple[bytes, str]] = []
    counts = fuzz(endpoint.port, REQUESTS, SEED, lambda raw, out: bad.append((raw[:160], out))
                  if out in FAILURES or out.startswith("bad-status") else None)  # fmt: skip
    assert not bad, f"{len(bad)} broken answers, first: {bad[:3]}"
    assert sum(counts.values()) == REQUESTS and len([k for k in counts if k.startswith("4")]) >= 5, counts
    assert verdict(exchange(endpoint.port, _ok_request())) == "200"
    assert rss_mb() - before < RSS_GROWTH_MB


def _ok_request() -> bytes:
    body = json.dumps(OK_BODY).encode()
    return b"POST /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body


# --------------------------------------------------------------------------------------------- bursts of large bodies


def post(port: int, body: Any, wait: float = 30.0) -> tuple[int, dict]:
    """POST /score with ``Connection: close``; (status, JSON payload) of the complete answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = b"POST /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(data)
    response = exchange(port, head + data, wait)
    outcome = verdict(response)
    assert outcome.isdigit(), (outcome, response[:300])
    return int(outcome), json.loads(response.partition(b"\r\n\r\n")[2])


def _chat(content: str) -> dict:
    return {"messages": [{"role": "user", "content": content}]}


def _large(limits: endpoint_host.Limits = LIMITS) -> dict:
    """A body just under the size cap whose prompt is far past the context (CONTEXT tokens)."""
    return _chat("word " * ((limits.max_body_bytes - 200) // 5))


def test_a_burst_past_the_pending_cap_gets_429_not_a_queue(endpoint: Endpoint) -> None:
    """With every pending slot taken, a large body and a small one each get 429 at once: the prompt-length count
    runs inside the cap (it used to run before it, one at a time, unbounded)."""
    HELD.release.clear()
    answers: list[tuple[int, dict]] = []
    holders = [threading.Thread(target=lambda: answers.append(post(endpoint.port, _chat(HOLD))))
               for _ in range(LIMITS.max_pending)]  # fmt: skip
    for thread in holders:
        thread.start()
    try:
        for _ in holders:
            assert HELD.arrived.acquire(timeout=30), "a held request never reached the model"
        status, payload = post(endpoint.port, _large())
        assert status == 429 and "too many pending requests" in payload["message"], (status, payload)
        status, payload = post(endpoint.port, OK_BODY)
        assert status == 429, (status, payload)
    finally:
        HELD.release.set()
        for thread in holders:
            thread.join(30)
    assert sorted(status for status, _ in answers) == [200] * LIMITS.max_pending, answers
    status, payload = post(endpoint.port, _large())  # slots free again: counted, and refused for its length
    assert status == 400 and f"context is {CONTEXT} tokens" in payload["message"], payload
    assert post(endpoint.port, OK_BODY)[0] == 200


def test_many_large_bodies_at_once_each_get_one_json_answer(endpoint: Endpoint) -> None:
    """A burst of 16 clients, most with bodies just under the size cap: each gets one complete JSON answer, a 400
    (counted: past the context), a 429 (no slot), a 408 or a 200 (the small ones), and the endpoint serves after."""
    counts = burst(endpoint.port, 16, SEED)
    assert sum(counts.values()) == 16 and set(counts) <= {"200", "400", "408", "429"}, counts
    assert post(endpoint.port, OK_BODY)[0] == 200


class _SlowCounter:
    """A prompt counter that takes longer than the request timeout (a huge prompt on a slow tokenizer)."""

    def __init__(self) -> None:
        self.loaded = threading.Event()
        self.loaded.set()
        self.error = None
        self.finished = threading.Event()

    def count_within(self, messages: list[dict], limit: int, deadline: float | None = None) -> tuple[int, bool]:
        import time

        assert deadline is not None, "the count must be given the request's deadline"
        self.finished.wait(max(0.0, deadline - time.monotonic()) + 1.0)
        raise TimeoutError("counting the prompt's tokens ran past the request timeout")


def test_a_count_slower_than_the_request_timeout_gets_408(tmp_path: Path) -> None:
    limits = endpoint_host.Limits(max_body_bytes=64 * 1024, idle_timeout=0.5, read_timeout=1.0, request_timeout=1.0)
    counter = _SlowCounter()
    served = serve(write_model(tmp_path / "model"), limits, counter)
    endpoint = next(served)
    try:
        status, payload = post(endpoint.port, _large(limits))
        assert status == 408 and "request timeout" in payload["message"], (status, payload)
    finally:
        counter.finished.set()
        served.close()


def test_a_4_million_character_prompt_is_tokenized_only_as_far_as_the_context(tmp_path: Path) -> None:
    """Bounded memory: the tokenizer sees at most one chunk of a prompt already past the context."""
    from tools.serve.model_context import CHUNK_CHARS

    counter = PromptCounter(write_model(tmp_path / "model"))
    counter.load()
    real, seen = counter._tokenizer, []

    class Recording:
        def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
            return real.apply_chat_template(*args, **kwargs)

        def __call__(self, text: str, **kwargs: Any) -> Any:
            seen.append(len(text))
            return real(text, **kwargs)

    counter._tokenizer = Recording()
    tokens, exact = counter.count_within([{"role": "user", "content": "word " * 800_000}], CONTEXT)
    assert not exact and tokens >= CONTEXT and seen == [CHUNK_CHARS], (tokens, seen)
    short = [{"role": "user", "content": "word " * 100}]
    assert counter.count_within(short, CONTEXT) == (counter.count(short), True)


@pytest.mark.parametrize("blank", [b"\r\n\r\n", b"   \r\n\r\n", b"\t\r\n", b" \r\n", b"\r\n \r\n"])
def test_a_blank_request_line_gets_a_400_json_answer(endpoint: Endpoint, blank: bytes) -> None:
    response = exchange(endpoint.port, blank)
    assert verdict(response) == "400", response[:300]
    assert b"request line is blank" in response
