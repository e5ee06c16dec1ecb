"""The local endpoint's Azure adapter against a stub MLflow server: body translation, status mapping, key auth."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tools.serve import endpoint_host
from tools.serve import scoring_client as sc
from tools.serve.process import free_port

from .conftest import Reply, StubEndpoint

MESSAGES = [{"role": "user", "content": "Who founded Microsoft?"}]
CHAT_RESPONSE = [{"object": "chat.completion", "choices": [{"index": 0, "message": {"content": "Bill Gates"}}]}]


@pytest.fixture()
def proxy(stub: StubEndpoint, fake_key: str) -> Iterator[str]:
    server = endpoint_host._Proxy(free_port(), stub.port, fake_key)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def post(url: str, body: bytes, key: str | None) -> tuple[int, object]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_azure_body_is_translated_and_answered_azure_style(proxy: str, stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(body=CHAT_RESPONSE))
    params = {"temperature": 0.2, "top_p": 0.5, "do_sample": False, "max_new_tokens": 7}
    status, payload = post(f"{proxy}/score", json.dumps(sc.azure_body([MESSAGES], params)).encode(), fake_key)
    assert (status, payload) == (200, {"output": "Bill Gates"})
    assert stub.seen[0].path == "/invocations"
    assert stub.seen[0].body == {"messages": MESSAGES, "max_tokens": 7, "top_k": 1}
    assert "Authorization" not in stub.seen[0].headers  # the key stops at the adapter


def test_several_conversations_give_a_list(proxy: str, stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(body=CHAT_RESPONSE))
    status, payload = post(f"{proxy}/score", json.dumps(sc.azure_body([MESSAGES, MESSAGES])).encode(), fake_key)
    assert (status, payload) == (200, [{"output": "Bill Gates"}, {"output": "Bill Gates"}])


def test_mlflow_bodies_pass_through(proxy: str, stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(body=CHAT_RESPONSE))
    body = {"dataframe_records": [{"messages": MESSAGES}]}
    status, payload = post(f"{proxy}/invocations", json.dumps(body).encode(), fake_key)
    assert (status, payload) == (200, CHAT_RESPONSE) and stub.seen[0].body == body


def test_model_failure_is_424_and_bad_input_400(proxy: str, stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(500, {"error_code": "INTERNAL_ERROR", "message": "generation blew up"}))
    status, payload = post(f"{proxy}/score", json.dumps(sc.azure_body([MESSAGES])).encode(), fake_key)
    assert status == 424 and "generation blew up" in payload["message"]
    assert post(f"{proxy}/score", b"{not json", fake_key)[0] == 400
    assert post(f"{proxy}/score", json.dumps({"input_data": "x"}).encode(), fake_key)[0] == 400
    bad_turn = {"input_data": {"input_string": [[{"role": "assistant", "content": "x"}]]}}
    assert post(f"{proxy}/score", json.dumps(bad_turn).encode(), fake_key)[0] == 400
    assert post(f"{proxy}/nowhere", b"{}", fake_key)[0] == 404


def test_key_is_required(proxy: str, stub: StubEndpoint, fake_key: str) -> None:
    body = json.dumps(sc.azure_body([MESSAGES])).encode()
    assert post(f"{proxy}/score", body, None)[0] == 401
    assert post(f"{proxy}/score", body, fake_key + "x")[0] == 401
    assert stub.seen == []


def test_ping_reflects_the_model_server(proxy: str) -> None:
    with urllib.request.urlopen(f"{proxy}/ping", timeout=5) as response:
        assert response.status == 200


def _proxy_with(stub: StubEndpoint, limits: endpoint_host.Limits) -> tuple[endpoint_host._Proxy, threading.Thread]:
    server = endpoint_host._Proxy(free_port(), stub.port, None, limits)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def _stop(server: endpoint_host._Proxy, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_slow_model_is_408_at_the_request_timeout(stub: StubEndpoint) -> None:
    stub.answer(Reply(body=CHAT_RESPONSE, delay=3.0))
    server, thread = _proxy_with(stub, endpoint_host.Limits(request_timeout=0.5))
    try:
        status, payload = post(f"http://127.0.0.1:{server.server_address[1]}/score",
                               json.dumps(sc.azure_body([MESSAGES])).encode(), None)  # fmt: skip
    finally:
        _stop(server, thread)
    assert status == 408 and "request timeout (0.5 s" in payload["message"]


def test_more_pending_requests_than_slots_get_429(stub: StubEndpoint) -> None:
    stub.answer(Reply(body=CHAT_RESPONSE, delay=1.5))
    server, thread = _proxy_with(stub, endpoint_host.Limits(max_pending=1, queue_wait=0.1))
    url = f"http://127.0.0.1:{server.server_address[1]}/score"
    body = json.dumps(sc.azure_body([MESSAGES])).encode()
    results: list[int] = []
    try:
        workers = [threading.Thread(target=lambda: results.append(post(url, body, None)[0])) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=20)
    finally:
        _stop(server, thread)
    assert sorted(results) == [200, 429]


def test_a_client_that_leaves_stops_the_remaining_conversations(stub: StubEndpoint) -> None:
    import socket
    import time

    stub.answer(Reply(body=CHAT_RESPONSE, delay=1.0))
    server, thread = _proxy_with(stub, endpoint_host.Limits())
    body = json.dumps(sc.azure_body([MESSAGES] * 5)).encode()
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
            sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            time.sleep(0.3)  # the first conversation is with the model
        time.sleep(3.0)  # the whole body would take 5 s; a proxy that ignored the departure would be at call 4
    finally:
        _stop(server, thread)
    assert len(stub.seen) == 1


def test_a_bare_string_answer_becomes_the_output(stub: StubEndpoint) -> None:
    stub.answer(Reply(status=200, body="just text"))
    server, thread = _proxy_with(stub, endpoint_host.Limits())
    try:
        status, payload = post(f"http://127.0.0.1:{server.server_address[1]}/score",
                               json.dumps(sc.azure_body([MESSAGES])).encode(), None)  # fmt: skip
    finally:
        _stop(server, thread)
    assert status == 200 and payload == {"output": "just text"}


def test_the_mlflow_child_gets_the_generation_deadline_and_its_own_timeout() -> None:
    limits = endpoint_host.Limits(request_timeout=30)
    env = endpoint_host.mlflow_env({"SERVING_MODEL_CONFIG": '{"temperature": 0.1}'}, limits, transformers_model=True)
    assert json.loads(env["SERVING_MODEL_CONFIG"]) == {"temperature": 0.1, "max_time": 28.0}
    command = endpoint_host.mlflow_command("m", 1234, limits)
    assert command[command.index("-t") + 1] == "35"
    assert "SERVING_MODEL_CONFIG" not in endpoint_host.mlflow_env({}, limits, transformers_model=False)
