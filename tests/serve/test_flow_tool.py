"""The Prompt flow tool in-process: endpoint from a CustomConnection or the environment, history, clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import REPO_ROOT, Reply, StubEndpoint


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chat_flow_tool", REPO_ROOT / "flows" / "chat" / "chat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_connection_supplies_url_and_key(tool: ModuleType, stub: StubEndpoint, fake_key: str, monkeypatch) -> None:
    from promptflow.connections import CustomConnection

    monkeypatch.delenv("AZUREML_ENDPOINT_URL", raising=False)
    connection = CustomConnection(configs={"endpoint_url": stub.url}, secrets={"api_key": fake_key})
    stub.answer(Reply(body={"output": "from the endpoint"}))
    history = [{"inputs": {"question": "Hi"}, "outputs": {"answer": "Hello"}}]
    answer = tool.chat(question="Q", chat_history=history, connection=connection, do_sample=False, max_new_tokens=5)
    assert answer == "from the endpoint"
    (request,) = stub.seen
    assert request.headers["Authorization"] == f"Bearer {fake_key}"
    assert request.body["input_data"]["input_string"] == [[
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Q"},
    ]]  # fmt: skip
    assert request.body["input_data"]["parameters"]["do_sample"] is False


def test_environment_and_mlflow_format(tool: ModuleType, stub: StubEndpoint, monkeypatch) -> None:
    monkeypatch.setenv("AZUREML_ENDPOINT_URL", stub.url)
    monkeypatch.setenv("AZUREML_ENDPOINT_KEY", "")
    monkeypatch.setenv("AZUREML_ENDPOINT_FORMAT", "mlflow")
    stub.answer(Reply(body=[{"choices": [{"message": {"content": "mlflow says"}}]}]))
    assert tool.chat(question="Q", max_new_tokens=5) == "mlflow says"
    assert stub.seen[0].body["messages"] == [{"role": "user", "content": "Q"}]
    assert "Authorization" not in stub.seen[0].headers


def test_endpoint_errors_surface_as_one_line(tool: ModuleType, stub: StubEndpoint, fake_key: str, monkeypatch) -> None:
    monkeypatch.setenv("AZUREML_ENDPOINT_URL", stub.url)
    monkeypatch.setenv("AZUREML_ENDPOINT_KEY", fake_key)
    stub.answer(Reply(401, {"message": "denied"}))
    with pytest.raises(RuntimeError, match="^HTTP 401") as caught:
        tool.chat(question="Q")
    assert fake_key not in str(caught.value)
    monkeypatch.setenv("AZUREML_ENDPOINT_URL", "${azureml_endpoint.endpoint_url}")  # an unresolved reference
    with pytest.raises(RuntimeError, match="not an http"):
        tool.chat(question="Q")


def test_flow_defaults_match_the_workspace_scoring_values(repo_root) -> None:  # noqa: ANN001
    """flows/chat/flow.dag.yaml repeats the generation defaults (Prompt flow needs them in the flow file): they
    must stay equal to the default workspace's `scoring:` values, the one source."""
    import yaml

    from tools.render.values import DEFAULT_WORKSPACE, load_values

    flow = yaml.safe_load((repo_root / "flows" / "chat" / "flow.dag.yaml").read_text())
    scoring = load_values(DEFAULT_WORKSPACE, repo_root).data["scoring"]
    assert {name: flow["inputs"][name]["default"] for name in scoring} == scoring


def test_client_defaults_equal_the_workspace_scoring_values(repo_root: Path) -> None:
    """The scoring client ships without the repo (Prompt flow copies it), so it carries its own defaults; they
    must stay equal to the default workspace's `scoring:` values, and score.py takes its defaults from it."""
    from tools.render.values import DEFAULT_WORKSPACE, load_values
    from tools.serve import scoring_client
    from tools.serve.score import generation_parameters

    scoring = load_values(DEFAULT_WORKSPACE, repo_root).data["scoring"]
    assert scoring == scoring_client.DEFAULT_PARAMETERS
    assert generation_parameters() == scoring
    assert generation_parameters(max_new_tokens=7) == {**scoring, "max_new_tokens": 7}
