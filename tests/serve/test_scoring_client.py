"""The scoring client against a stub endpoint on 127.0.0.1: retries, one-line failures, both bodies, no key leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.serve import scoring_client as sc

from .conftest import REPO_ROOT, Reply, StubEndpoint

CONVERSATION = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Who founded Microsoft?"},
]
AZURE_BODY = sc.azure_body([CONVERSATION], {"temperature": 0.6, "top_p": 0.9, "do_sample": True, "max_new_tokens": 20})


def call(stub: StubEndpoint, key: str, **kwargs) -> str:
    options = {"timeout": 5.0, "retries": 2, "backoff_factor": 0.0, **kwargs}
    return sc.invoke(stub.url, key, AZURE_BODY, **options)


def one_line_error(stub: StubEndpoint, key: str, **kwargs) -> str:
    with pytest.raises(sc.ScoringError) as caught:
        call(stub, key, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert key not in message
    return message


# --------------------------------------------------------------------------------------------- transport


def test_success_sends_bearer_key_and_json(stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(body={"output": "Bill Gates and Paul Allen"}))
    assert call(stub, fake_key) == "Bill Gates and Paul Allen"
    (request,) = stub.seen
    assert request.headers["Authorization"] == f"Bearer {fake_key}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == AZURE_BODY


def test_429_then_200_is_retried_honouring_retry_after(stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(429, {"message": "too many requests"}, {"Retry-After": "0"}), Reply(body={"output": "ok"}))
    assert call(stub, fake_key) == "ok"
    assert len(stub.seen) == 2


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried(stub: StubEndpoint, fake_key: str, status: int) -> None:
    stub.answer(Reply(status, {"message": "upstream"}), Reply(body={"output": "ok"}))
    assert call(stub, fake_key) == "ok"
    assert len(stub.seen) == 2


def test_connection_reset_is_retried(stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(reset=True), Reply(body={"output": "after reset"}))
    assert call(stub, fake_key) == "after reset"
    assert len(stub.seen) == 2


def test_persistent_429_gives_up_with_one_line(stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(429, {"message": "throttled"}, {"Retry-After": "0"}))
    message = one_line_error(stub, fake_key, retries=2)
    assert "429" in message and "2 retries" in message
    assert len(stub.seen) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_is_one_clear_line_without_retry(stub: StubEndpoint, fake_key: str, status: int) -> None:
    stub.answer(Reply(status, {"message": f"echo Bearer {fake_key}"}))
    message = one_line_error(stub, fake_key, endpoint="chat-ep")
    assert f"HTTP {status}" in message and "rejected the key" in message
    assert "az ml online-endpoint get-credentials -n chat-ep" in message
    assert len(stub.seen) == 1


def test_404_names_endpoint_or_deployment(stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(404, {"message": "not found"}))
    message = one_line_error(stub, fake_key, endpoint="chat-ep", deployment="blue")
    assert "HTTP 404" in message and "endpoint or deployment" in message and "blue" in message
    assert len(stub.seen) == 1


def test_424_gives_the_get_logs_command(stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(424, {"message": "CUDA out of memory"}, {"azureml-model-deployment": "blue"}))
    message = one_line_error(stub, fake_key, endpoint="chat-ep", scope="-g rg -w ws")
    assert "model error" in message and "CUDA out of memory" in message
    assert "`az ml online-deployment get-logs -e chat-ep -n blue --lines 100 -g rg -w ws`" in message


def test_slow_response_times_out_without_retry(stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(delay=1.5))
    message = one_line_error(stub, fake_key, timeout=0.3)
    assert message.startswith("timeout:") and "0.3 s" in message
    assert len(stub.seen) == 1


def test_unreachable_endpoint(fake_key: str) -> None:
    server = StubEndpoint()
    url = server.url
    server.close()
    with pytest.raises(sc.ScoringError, match="cannot reach"):
        sc.invoke(url, fake_key, AZURE_BODY, timeout=2, retries=1, backoff_factor=0)


def test_deployment_header_routes(stub: StubEndpoint, fake_key: str) -> None:
    call(stub, fake_key, deployment="green")
    assert stub.seen[0].headers["azureml-model-deployment"] == "green"


def test_no_key_sends_no_authorization(stub: StubEndpoint) -> None:
    sc.invoke(stub.url, None, AZURE_BODY, timeout=5)
    assert "Authorization" not in stub.seen[0].headers


# --------------------------------------------------------------------------------------------- body formats


def test_mlflow_format_is_converted_on_the_wire(stub: StubEndpoint, fake_key: str) -> None:
    stub.answer(Reply(body=[{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paul"}}]}]))
    assert call(stub, fake_key, fmt=sc.MLFLOW) == "Paul"
    assert stub.seen[0].body == {"messages": CONVERSATION, "max_tokens": 20, "temperature": 0.6, "top_p": 0.9}


def test_azure_format_sent_as_is(stub: StubEndpoint, fake_key: str) -> None:
    mlflow_body = sc.convert(AZURE_BODY, sc.MLFLOW)
    sc.invoke(stub.url, fake_key, mlflow_body, fmt=sc.AZURE, timeout=5)
    assert stub.seen[0].body == AZURE_BODY


def test_greedy_maps_to_top_k_1_and_back() -> None:
    greedy = sc.azure_body([CONVERSATION], {"temperature": 0.6, "top_p": 0.9, "do_sample": False, "max_new_tokens": 8})
    chat = sc.azure_to_mlflow(greedy)
    assert chat == {"messages": CONVERSATION, "max_tokens": 8, "top_k": 1}
    back = sc.mlflow_to_azure(chat)
    assert back["input_data"]["parameters"] == {"do_sample": False, "max_new_tokens": 8}
    assert back["input_data"]["input_string"] == [CONVERSATION]


def test_round_trip_keeps_sampling_parameters() -> None:
    assert sc.convert(sc.convert(AZURE_BODY, sc.MLFLOW), sc.AZURE) == AZURE_BODY


@pytest.mark.parametrize(
    "body, message",
    [
        ({"prompt": "hi"}, "neither"),
        ({"messages": []}, "non-empty"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "last message"),
        ({"messages": [{"role": "robot", "content": "q"}]}, "role"),
    ],
)
def test_bad_bodies_are_rejected(body: dict, message: str) -> None:
    with pytest.raises(sc.ScoringError, match=message):
        sc.convert(body, sc.AZURE)


def test_several_conversations_cannot_become_one_chat_body() -> None:
    body = sc.azure_body([CONVERSATION, CONVERSATION])
    with pytest.raises(sc.ScoringError, match="exactly one conversation, got 2"):
        sc.azure_to_mlflow(body)


@pytest.mark.parametrize(
    "payload",
    [
        {"output": "A"},
        [{"0": "A"}],
        ["A"],
        [{"generated_text": "A"}],
        {"choices": [{"message": {"role": "assistant", "content": "A"}}]},
        [{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "A"}}]}],
        {"predictions": [{"choices": [{"text": "A"}]}]},
        "A",
    ],
)
def test_answer_is_found_in_every_response_shape(payload: object) -> None:
    assert sc.extract_answer(payload) == "A"


def test_unknown_response_shape_is_reported() -> None:
    with pytest.raises(sc.ScoringError, match="cannot find the answer"):
        sc.extract_answer({"result": 42})


# --------------------------------------------------------------------------------------------- CLI


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "tools", "score", *args],
        cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_invoke_prints_answer_never_key(stub: StubEndpoint, fake_key: str, tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps(AZURE_BODY))
    stub.answer(Reply(body={"output": "Bill Gates"}))
    env = {"AZUREML_ENDPOINT_URL": stub.url, "AZUREML_ENDPOINT_KEY": fake_key}
    done = run_cli(["invoke", "--request-file", str(request)], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Bill Gates"
    assert fake_key not in done.stdout + done.stderr
    assert stub.seen[0].headers["Authorization"] == f"Bearer {fake_key}"

    stub.answer(Reply(401, {"message": "denied"}))
    done = run_cli(["invoke", "--request-file", str(request), "--retries", "0"], env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: HTTP 401")
    assert "Traceback" not in done.stderr and fake_key not in done.stdout + done.stderr


def test_cli_invoke_without_endpoint_is_a_user_error(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps(AZURE_BODY))
    env = {"AZUREML_ENDPOINT_URL": "", "AZUREML_ENDPOINT_KEY": ""}
    done = run_cli(["invoke", "--request-file", str(request)], env)
    assert done.returncode == 2 and "no endpoint" in done.stderr and "Traceback" not in done.stderr


def test_cli_invoke_with_endpoint_name_needs_az(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(json.dumps(AZURE_BODY))
    env = {"AZUREML_ENDPOINT_URL": "", "AZUREML_ENDPOINT_KEY": "", "PATH": str(Path(sys.executable).parent)}
    done = run_cli(["invoke", "--endpoint", "chat-ep", "-g", "rg", "-w", "ws", "--request-file", str(request)], env)
    assert done.returncode == 2 and "`az` is not installed" in done.stderr
