"""Prompt flow python tool: one chat turn answered by the fine-tuned model's online endpoint.

The endpoint URL and key come from the node's ``connection`` input (a CustomConnection with config
``endpoint_url`` and secret ``api_key``) or from AZUREML_ENDPOINT_URL / AZUREML_ENDPOINT_KEY. The request goes
through the repo's client (tools/serve/scoring_client.py: retries, timeouts, clear errors, both body formats), which the
flow ships as an ``additional_includes`` file; run from a checkout, the repo copy is found by walking up.

Failures raise (``pf flow test`` exits non-zero). Behind the chat page of ``pf flow serve`` (``python -m tools chat``
sets CHAT_ERRORS_AS_ANSWER=1) they are returned as the answer instead, prefixed with ERROR_PREFIX: that page shows
only "Request failed with status code 400" for a failed request and drops the server's message (promptflow 1.18.5,
``core/_serving/static/index.js``, ``onSettled``: ``V6(I.message)``). Such turns are left out of the history sent
to the model.
"""

import os
import sys
from pathlib import Path
from types import ModuleType

from promptflow.connections import CustomConnection
from promptflow.core import tool

URL_ENV = "AZUREML_ENDPOINT_URL"
KEY_ENV = "AZUREML_ENDPOINT_KEY"
FORMAT_ENV = "AZUREML_ENDPOINT_FORMAT"
ERRORS_AS_ANSWER_ENV = "CHAT_ERRORS_AS_ANSWER"
ERROR_PREFIX = "Error from the model's endpoint: "


def _client() -> ModuleType:
    """The scoring client: the copy beside this file (additional_includes), else the repo's tools/ package."""
    try:
        import scoring_client

        return scoring_client
    except ImportError:
        pass
    for parent in Path(__file__).resolve().parents:
        if (parent / "tools" / "serve" / "scoring_client.py").is_file():
            if str(parent) not in sys.path:
                sys.path.insert(0, str(parent))
            break
    from tools.serve import scoring_client

    return scoring_client


def history_to_messages(chat_history: list, question: str) -> list:
    """Prompt flow chat history ([{inputs: {question}, outputs: {answer}}, ...]) + the new question -> messages."""
    messages = []
    for turn in chat_history or []:
        inputs, outputs = turn.get("inputs") or {}, turn.get("outputs") or {}
        asked = inputs.get("question", next(iter(inputs.values()), None))
        answered = outputs.get("answer", next(iter(outputs.values()), None))
        if isinstance(answered, str) and answered.startswith(ERROR_PREFIX):
            continue  # a failed turn (shown in the page): the model never answered it
        if isinstance(asked, str):
            messages.append({"role": "user", "content": asked})
        if isinstance(answered, str):
            messages.append({"role": "assistant", "content": answered})
    messages.append({"role": "user", "content": question})
    return messages


def _endpoint(connection: CustomConnection) -> tuple:
    if connection is not None:
        configs = dict(getattr(connection, "configs", {}) or {})
        secrets = dict(getattr(connection, "secrets", {}) or {})
        url, key = configs.get("endpoint_url"), secrets.get("api_key")
    else:
        url, key = os.environ.get(URL_ENV), os.environ.get(KEY_ENV)
    if not url:
        raise ValueError(
            f"no endpoint: set {URL_ENV} (and {KEY_ENV}) or give the node a CustomConnection with "
            "configs.endpoint_url and secrets.api_key"
        )
    return url, key or None


@tool
def chat(
    question: str,
    chat_history: list = None,  # plain annotations: Prompt flow reads them
    connection: CustomConnection = None,
    temperature: float = 0.6,
    top_p: float = 0.9,
    do_sample: bool = True,
    max_new_tokens: int = 200,
    timeout: float = 90.0,
) -> str:
    """Answer ``question`` given ``chat_history`` with the endpoint's model; returns the answer text."""
    client = _client()
    try:
        url, key = _endpoint(connection)
        parameters = {"temperature": temperature, "top_p": top_p, "do_sample": do_sample,
                      "max_new_tokens": max_new_tokens}  # fmt: skip
        body = client.azure_body([history_to_messages(chat_history, question)], parameters)
        fmt = os.environ.get(FORMAT_ENV) or client.AZURE
        return client.invoke(url, key, body, fmt=fmt, timeout=timeout)
    except (client.ScoringError, ValueError) as error:
        if os.environ.get(ERRORS_AS_ANSWER_ENV) == "1":
            return ERROR_PREFIX + str(error)
        if isinstance(error, ValueError):
            raise
        raise RuntimeError(str(error)) from None
