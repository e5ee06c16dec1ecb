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
from tools.serve.host import free_port

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
