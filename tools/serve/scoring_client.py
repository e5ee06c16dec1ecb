"""Scoring client for Azure ML online endpoints and MLflow scoring servers (stdlib + requests only).

Two request bodies are spoken and converted into each other:

* ``azure``: the foundation-model body ``{"input_data": {"input_string": [[{role, content}, ...]],
  "parameters": {temperature, top_p, do_sample, max_new_tokens}}, "params": {}}``;
* ``mlflow``: the OpenAI-style chat body of an MLflow ``llm/v1/chat`` model,
  ``{"messages": [...], "max_tokens": N, "temperature": T, "top_p": P}``.

MLflow's chat signature has no ``do_sample``: greedy decoding (``do_sample: false``) is sent as ``top_k: 1``, which
picks the arg-max token exactly like greedy search. ``extract_answer`` reads the answer text from every response
shape these servers give (``{"output": ...}``, ``[{"0": ...}]``, OpenAI ``choices``, MLflow ``predictions``).

Transport: a ``requests`` session with urllib3 ``Retry`` (exponential backoff, 429/502/503/504, connection resets,
``Retry-After`` honoured; read timeouts are not retried), a timeout, and one clear line per failure class (401/403
key, 404 endpoint or deployment, 424 model error with the ``get-logs`` command, timeout). The key only ever goes
into the ``Authorization: Bearer`` header; it is never printed, logged or put into an error message.

This module has no dependency on the rest of the repo, so the Prompt flow tool can ship it as an
``additional_includes`` file.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

ENDPOINT_URL_ENV = "AZUREML_ENDPOINT_URL"  # an endpoint's scoring URI (score, chat, flows/chat/chat.py)
ENDPOINT_KEY_ENV = "AZUREML_ENDPOINT_KEY"  # its key
AZURE = "azure"
MLFLOW = "mlflow"
FORMATS = (AZURE, MLFLOW)

# The seed walkthrough's generation parameters; callers pass the workspace's `scoring:` values instead.
DEFAULT_PARAMETERS: dict[str, Any] = {"temperature": 0.6, "top_p": 0.9, "do_sample": True, "max_new_tokens": 200}
RETRY_STATUSES = (429, 502, 503, 504)
DEPLOYMENT_HEADER = "azureml-model-deployment"
ROLES = ("system", "user", "assistant")


class ScoringError(Exception):
    """A scoring call failed in a way the user can act on; ``str(error)`` is one line without secrets."""


# --------------------------------------------------------------------------------------------- request bodies


def detect_format(body: Any) -> str:
    """Return ``azure`` or ``mlflow`` for a request body, or raise ScoringError for anything else."""
    if isinstance(body, dict) and isinstance(body.get("input_data"), dict):
        return AZURE
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        return MLFLOW
    raise ScoringError(
        'request body is neither the Azure foundation-model body ({"input_data": {"input_string": ...}}) '
        'nor an MLflow chat body ({"messages": [...]})'
    )


def check_messages(messages: Any, where: str = "messages") -> list[dict[str, str]]:
    """Validate one conversation: a non-empty list of {role, content} ending with a user turn."""
    if not isinstance(messages, list) or not messages:
        raise ScoringError(f"{where}: expected a non-empty list of {{role, content}} messages")
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise ScoringError(f'{where}[{index}]: expected {{"role": one of {list(ROLES)}, "content": str}}')
    if messages[-1]["role"] != "user":
        raise ScoringError(f"{where}: the last message must be a user turn, got {messages[-1]['role']!r}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


MAX_INT = 2**31 - 1  # generation lengths past this are not numbers any model takes (int32 in torch and ONNX)


def _integer(value: Any, where: str, minimum: int) -> int:
    """An integer (an integral JSON number like 5.0 counts) in [minimum, MAX_INT]; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ScoringError(f"{where}: expected an integer >= {minimum}, got {json.dumps(value)[:40]}")
    if isinstance(value, float) and not value.is_integer():
        raise ScoringError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    if not minimum <= value <= MAX_INT:
        raise ScoringError(f"{where}: expected an integer in [{minimum}, {MAX_INT}], got {value:.0f}")
    return int(value)


def _number(value: Any, where: str, low: float, high: float | None, low_open: bool = False) -> float:
    """A finite JSON number in the range; booleans are not numbers."""
    span = f"{'(' if low_open else '['}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScoringError(f"{where}: expected a number in {span}, got {json.dumps(value)[:40]}")
    too_low = value <= low if low_open else value < low
    if value != value or too_low or (high is not None and value > high) or value in (float("inf"), float("-inf")):
        raise ScoringError(f"{where}: expected a number in {span}, got {value!r}")
    return value


def check_parameters(params: Any, where: str = "input_data.parameters") -> dict[str, Any]:
    """Check the generation parameters' types and ranges (absent or null: none); return them as given.

    The ranges are those transformers' GenerationConfig accepts (temperature > 0 only matters when sampling,
    top_p in (0, 1], top_k >= 0, max_new_tokens >= 1); keys this client does not know are left to the server.
    """
    if params is None:
        return {}
    if not isinstance(params, dict):
        kind = type(params).__name__
        raise ScoringError(f"{where or 'parameters'}: expected an object of generation parameters, got {kind}")
    checked = dict(params)
    at = (lambda key: f"{where}.{key}") if where else (lambda key: key)  # noqa: E731 - a one-line key path
    if "temperature" in params:
        checked["temperature"] = _number(params["temperature"], at("temperature"), 0.0, None)
    if "top_p" in params:
        checked["top_p"] = _number(params["top_p"], at("top_p"), 0.0, 1.0, low_open=True)
    if "top_k" in params:
        checked["top_k"] = _integer(params["top_k"], at("top_k"), 0)
    if "max_new_tokens" in params:
        checked["max_new_tokens"] = _integer(params["max_new_tokens"], at("max_new_tokens"), 1)
    if "do_sample" in params and not isinstance(params["do_sample"], bool):
        raise ScoringError(f"{at('do_sample')}: expected true or false, got {json.dumps(params['do_sample'])[:40]}")
    return checked


def check_chat_fields(body: dict, where: str = "") -> dict[str, Any]:
    """Check the typed fields of an MLflow/OpenAI chat body (``max_tokens``, ``temperature``, ...); return them."""
    prefix = f"{where}." if where else ""
    params: dict[str, Any] = {}
    if "max_tokens" in body and body["max_tokens"] is not None:
        params["max_new_tokens"] = _integer(body["max_tokens"], f"{prefix}max_tokens", 1)
    for key in ("temperature", "top_p", "top_k"):
        if key in body and body[key] is not None:
            params[key] = body[key]
    checked = check_parameters(params, where)
    if "n" in body and body["n"] is not None:
        _integer(body["n"], f"{prefix}n", 1)
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise ScoringError(f"{prefix}stream: expected true or false")
    stop = body.get("stop")
    if (
        stop is not None
        and not isinstance(stop, str)
        and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise ScoringError(f"{prefix}stop: expected a string or a list of strings")
    return checked


def azure_body(conversations: list[list[dict[str, str]]], parameters: dict[str, Any] | None = None) -> dict:
    """Build the foundation-model body for one or more conversations."""
    checked = [check_messages(c, f"input_string[{i}]") for i, c in enumerate(conversations)]
    params = dict(DEFAULT_PARAMETERS if parameters is None else parameters)
    return {"input_data": {"input_string": checked, "parameters": params}, "params": {}}


def azure_to_mlflow(body: dict) -> dict:
    """Convert a foundation-model body holding exactly one conversation into an MLflow chat body."""
    data = body.get("input_data")
    conversations = data.get("input_string") if isinstance(data, dict) else None
    if not isinstance(conversations, list) or len(conversations) != 1:
        count = len(conversations) if isinstance(conversations, list) else 0
        raise ScoringError(
            f"input_data.input_string: an MLflow chat request takes exactly one conversation, got {count}"
        )
    messages = check_messages(conversations[0], "input_data.input_string[0]")
    params = check_parameters(data.get("parameters"))
    out: dict[str, Any] = {"messages": messages}
    if "max_new_tokens" in params:
        out["max_tokens"] = params["max_new_tokens"]
    if params.get("do_sample", True) is False:
        out["top_k"] = 1  # greedy: the signature has no do_sample; top-1 sampling is arg-max
    else:
        for key in ("temperature", "top_p", "top_k"):
            if key in params:
                out[key] = params[key]
    return out


def mlflow_to_azure(body: dict) -> dict:
    """Convert an MLflow chat body into the foundation-model body."""
    messages = check_messages(body.get("messages"))
    params: dict[str, Any] = {}
    if "temperature" in body:
        params["temperature"] = body["temperature"]
    if "top_p" in body:
        params["top_p"] = body["top_p"]
    greedy = body.get("top_k") == 1
    params["do_sample"] = not greedy
    if "top_k" in body and not greedy:
        params["top_k"] = body["top_k"]
    if "max_tokens" in body:
        params["max_new_tokens"] = _integer(body["max_tokens"], "max_tokens", 1)
    return {"input_data": {"input_string": [messages], "parameters": params}, "params": {}}


def convert(body: dict, fmt: str) -> dict:
    """Return ``body`` in format ``fmt`` (a copy; unchanged content when it already is)."""
    if fmt not in FORMATS:
        raise ScoringError(f"unknown request format {fmt!r}; expected one of {list(FORMATS)}")
    current = detect_format(body)
    if current == fmt:
        return copy.deepcopy(body)
    return azure_to_mlflow(body) if fmt == MLFLOW else mlflow_to_azure(body)


# --------------------------------------------------------------------------------------------- responses


def extract_answer(payload: Any) -> str:
    """Return the assistant's answer text from any known response shape (Azure, MLflow, OpenAI)."""
    answer = _find_answer(payload, depth=0)
    if answer is None:
        text = json.dumps(payload, ensure_ascii=False)[:200]
        raise ScoringError(f"cannot find the answer text in the response: {text}")
    return answer


def _find_answer(payload: Any, depth: int) -> str | None:
    if depth > 4:
        return None
    if isinstance(payload, str):
        return payload
    if isinstance(payload, list):
        return _find_answer(payload[0], depth + 1) if payload else None
    if not isinstance(payload, dict):
        return None
    for key in ("output", "0", "generated_text", "text", "content"):
        if isinstance(payload.get(key), str):
            return payload[key]
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        message = first.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]
        if isinstance(first.get("text"), str):
            return first["text"]
    for key in ("predictions", "output", "outputs"):
        if key in payload:
            return _find_answer(payload[key], depth + 1)
    return None


# --------------------------------------------------------------------------------------------- transport


class _ScoringRetry(Retry):
    """Retry connection failures, resets and 429/502/503/504, but never a read timeout (the model is just slow)."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):  # noqa: ANN001, ANN201
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def make_session(retries: int = 3, backoff_factor: float = 0.5) -> requests.Session:
    """A session that retries POSTs on connection errors, resets and 429/502/503/504, honouring Retry-After."""
    retry = _ScoringRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff_factor,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"POST", "GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def get_logs_command(endpoint: str | None, deployment: str | None, scope: str = "") -> str:
    """The exact command that shows a deployment's container log (``scope``: e.g. ``-g RG -w WS``)."""
    command = f"az ml online-deployment get-logs -e {endpoint or '<endpoint>'} -n {deployment or '<deployment>'}"
    return f"{command} --lines 100{' ' + scope if scope else ''}"


def post_score(
    url: str,
    key: str | None,
    body: dict,
    *,
    fmt: str | None = None,
    timeout: float = 90.0,
    retries: int = 3,
    backoff_factor: float = 0.5,
    endpoint: str | None = None,
    deployment: str | None = None,
    scope: str = "",
    session: requests.Session | None = None,
) -> Any:
    """POST ``body`` (converted to ``fmt`` when given) to ``url``; return the decoded JSON response.

    Raises ScoringError with one actionable line for every failure; the key never appears in it.
    """
    if not url.startswith(("http://", "https://")):
        raise ScoringError(f"not an http(s) scoring URI: {url!r}")
    payload = convert(body, fmt) if fmt else body
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if deployment:
        headers[DEPLOYMENT_HEADER] = deployment
    own_session = session is None
    session = session or make_session(retries, backoff_factor)
    try:
        response = session.post(url, data=json.dumps(payload).encode("utf-8"), headers=headers, timeout=timeout)
    except requests.exceptions.ReadTimeout as error:
        raise ScoringError(
            f"timeout: no response from {url} within {timeout:g} s (the model may still be loading or generating; "
            "raise --timeout, and the deployment's request_settings.request_timeout_ms, max 180000)"
        ) from error
    except requests.exceptions.ConnectTimeout as error:
        raise ScoringError(f"timeout: could not connect to {url} within {timeout:g} s") from error
    except requests.exceptions.RetryError as error:
        raise ScoringError(f"{url}: still failing after {retries} retries ({_reason(error)})") from error
    except requests.exceptions.ConnectionError as error:
        raise ScoringError(f"cannot reach {url} after {retries} retries: {_reason(error)}") from error
    except requests.exceptions.RequestException as error:
        raise ScoringError(f"request to {url} failed: {_reason(error)}") from error
    finally:
        if own_session:
            session.close()
    _raise_for_status(
        response, url, retries, endpoint, deployment or response.headers.get(DEPLOYMENT_HEADER), scope, key
    )
    try:
        return response.json()
    except ValueError as error:
        raise ScoringError(f"{url} answered HTTP {response.status_code} with a body that is not JSON") from error


def _reason(error: Exception) -> str:
    reason = error.args[0] if error.args else error
    inner = getattr(reason, "reason", None)
    return type(inner or reason).__name__ + (f": {inner}" if inner else "")


def _raise_for_status(
    response: requests.Response,
    url: str,
    retries: int,
    endpoint: str | None,
    deployment: str | None,
    scope: str,
    key: str | None,
) -> None:
    status = response.status_code
    if status < 400:
        return
    text = response.text.replace(key, "***") if key else response.text
    detail = " ".join(text.split())[:200]
    where = f" {scope}" if scope else ""
    if status in (401, 403):
        raise ScoringError(
            f"HTTP {status} from {url}: the endpoint rejected the key; fetch it with `az ml online-endpoint "
            f"get-credentials -n {endpoint or '<endpoint>'}{where} --query primaryKey -o tsv` into AZUREML_ENDPOINT_KEY"
        )
    if status == 404:
        raise ScoringError(
            f"HTTP 404 from {url}: no such endpoint or deployment; check the scoring URI (`az ml online-endpoint "
            f"show -n {endpoint or '<endpoint>'}{where} --query scoring_uri -o tsv`) and that the deployment"
            f"{' ' + deployment if deployment else ''} exists and receives traffic"
        )
    if status == 424:
        raise ScoringError(
            f"HTTP 424 from {url}: the model failed on this request (model error: {detail or 'no detail'}); "
            f"read the container log: `{get_logs_command(endpoint, deployment, scope)}`"
        )
    if status in RETRY_STATUSES:
        raise ScoringError(f"HTTP {status} from {url} after {retries} retries: {detail or 'no detail'}")
    raise ScoringError(f"HTTP {status} from {url}: {detail or 'no detail'}")


def invoke(url: str, key: str | None, body: dict, **options: Any) -> str:
    """Score ``body`` at ``url`` and return the answer text (``options``: those of :func:`post_score`)."""
    return extract_answer(post_score(url, key, body, **options))
