"""The whole consume path against a real local endpoint serving a fine-tuned tiny model.

fine_tune.py output -> `mlflow models serve` behind the Azure-body adapter -> scoring client (both bodies) and
`pf flow test` on flows/chat. With greedy parameters the answer must equal the model's own greedy generation.
Stopping leaves no process and no listening port.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tools.core.errors import UserError
from tools.serve import process as serve
from tools.serve import scoring_client as sc

from .conftest import REPO_ROOT

PF_SERVICE_PORT = 23333
QUESTION = "What is the capital of France?"
MAX_NEW_TOKENS = 12


@pytest.fixture(scope="module")
def endpoint(
    finetuned_model: Path, fake_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[serve.LocalEndpoint]:
    state_dir = tmp_path_factory.mktemp("serve-state")
    running = serve.start(finetuned_model, key=fake_key, state_dir=state_dir, ready_timeout=180)
    try:
        yield running
    finally:
        serve.stop_endpoint(running)  # a no-op when the last test already stopped it


@pytest.fixture(scope="module")
def greedy(finetuned_model: Path) -> Callable[[list[dict[str, str]], int], str]:
    """The model's own greedy answer, computed with transformers directly (no MLflow, no server)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(finetuned_model / "components" / "tokenizer")
    model = AutoModelForCausalLM.from_pretrained(finetuned_model / "model")
    model.eval()

    def answer(messages: list[dict[str, str]], max_new_tokens: int) -> str:
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens)
        text = tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return text.lstrip()  # as MLflow's llm/v1/chat does (mlflow/transformers/llm_inference_utils.py)

    return answer


def greedy_body(messages: list[dict[str, str]]) -> dict:
    params = {"temperature": 0.6, "top_p": 0.9, "do_sample": False, "max_new_tokens": MAX_NEW_TOKENS}
    return sc.azure_body([messages], params)


def test_azure_body_answer_is_the_models_greedy_answer(endpoint: serve.LocalEndpoint, fake_key: str, greedy) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    answer = sc.invoke(endpoint.url, fake_key, greedy_body(messages), timeout=60)
    expected = greedy(messages, MAX_NEW_TOKENS)
    assert expected.strip(), "the model's greedy answer is empty: the comparison would prove nothing"
    assert answer == expected


def test_mlflow_body_gives_the_same_answer(endpoint: serve.LocalEndpoint, fake_key: str, greedy) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": QUESTION},
    ]
    raw = sc.post_score(endpoint.url, fake_key, greedy_body(messages), fmt=sc.MLFLOW, timeout=60)
    assert raw[0]["object"] == "chat.completion"  # MLflow's own response, passed through
    assert sc.extract_answer(raw) == greedy(messages, MAX_NEW_TOKENS)


def test_sampling_request_and_azure_response_shape(endpoint: serve.LocalEndpoint, fake_key: str) -> None:
    body = sc.azure_body([[{"role": "user", "content": QUESTION}]], dict(sc.DEFAULT_PARAMETERS, max_new_tokens=8))
    raw = sc.post_score(endpoint.url, fake_key, body, timeout=60)
    assert set(raw) == {"output"} and isinstance(raw["output"], str)


def test_wrong_key_is_rejected_in_one_line(endpoint: serve.LocalEndpoint, fake_key: str) -> None:
    wrong = fake_key[::-1]
    with pytest.raises(sc.ScoringError) as caught:
        sc.invoke(endpoint.url, wrong, greedy_body([{"role": "user", "content": "hi"}]), timeout=30, retries=0)
    assert str(caught.value).startswith("HTTP 401") and wrong not in str(caught.value)


def _flow_tree(tmp_path: Path) -> Path:
    """The flow as it sits in the repo (flows/chat, tools/serve/scoring_client.py, pf.yaml), outside the checkout."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "flows" / "chat", root / "flows" / "chat",
                    ignore=shutil.ignore_patterns(".promptflow", "__pycache__"))  # fmt: skip
    (root / "tools" / "serve").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "tools" / "serve" / "scoring_client.py", root / "tools" / "serve" / "scoring_client.py")
    shutil.copy2(REPO_ROOT / "pf.yaml", root / "pf.yaml")
    return root


def _pf_flow_test(root: Path, env: dict[str, str], *inputs: str) -> subprocess.CompletedProcess:
    pf = Path(sys.executable).parent / "pf"
    return subprocess.run(
        [str(pf), "flow", "test", "--flow", "flows/chat", "--inputs", *inputs],
        cwd=root, env={**os.environ, **env}, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def _flow_output(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("\n{") + 1 :] if not stdout.startswith("{") else stdout)


def test_prompt_flow_answer_comes_from_the_model(
    endpoint: serve.LocalEndpoint, fake_key: str, greedy, tmp_path: Path
) -> None:
    busy_before = serve.is_listening(PF_SERVICE_PORT)
    root = _flow_tree(tmp_path)
    env = {"AZUREML_ENDPOINT_URL": endpoint.url, "AZUREML_ENDPOINT_KEY": fake_key}
    done = _pf_flow_test(root, env, f"question={QUESTION}", "do_sample=false", f"max_new_tokens={MAX_NEW_TOKENS}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _flow_output(done.stdout) == {"answer": greedy([{"role": "user", "content": QUESTION}], MAX_NEW_TOKENS)}
    assert fake_key not in done.stdout + done.stderr
    if not busy_before:
        assert not serve.is_listening(PF_SERVICE_PORT), "pf left its service running: pf.yaml not honoured"


def test_prompt_flow_without_endpoint_says_what_to_set(tmp_path: Path) -> None:
    root = _flow_tree(tmp_path)
    done = _pf_flow_test(root, {"AZUREML_ENDPOINT_URL": "", "AZUREML_ENDPOINT_KEY": ""}, "question=hi")
    assert done.returncode != 0
    assert "no endpoint: set AZUREML_ENDPOINT_URL" in done.stdout + done.stderr


def test_stop_leaves_no_process_and_no_port(endpoint: serve.LocalEndpoint) -> None:
    import psutil

    leader = psutil.Process(endpoint.pid)
    family = [leader, *leader.children(recursive=True)]
    assert len(family) >= 2  # the adapter and MLflow's server (plus its uvicorn)
    serve.stop_endpoint(endpoint)
    for process in family:
        assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE, process
    assert not serve.is_listening(endpoint.port) and not serve.is_listening(endpoint.upstream_port)
    assert serve.recorded(Path(endpoint.state_dir)) == []


def test_cli_rejects_a_folder_without_mlmodel(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tools", "serve", "start", "--model", str(tmp_path), "--port", "0"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "not an MLflow model folder" in done.stderr and "Traceback" not in done.stderr


def test_a_model_that_cannot_load_fails_start_cleanly(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    state_dir = tmp_path / "state"
    port = serve.free_port()
    with pytest.raises(UserError, match="exited with code") as caught, serve.local_endpoint(
        broken, port, state_dir=state_dir, ready_timeout=120
    ):
        pytest.fail("the endpoint should not have become ready")
    assert "\n" not in str(caught.value)
    assert not serve.is_listening(port) and serve.recorded(state_dir) == []
