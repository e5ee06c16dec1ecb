"""Read one scoring request's framing and body into the checked upstream request, or one client error (status and
message).

Pure functions (no sockets) used by the local endpoint (tools/serve/endpoint_host.py):

* ``content_length``: the ``Content-Length`` header, checked against the size cap before any body byte is read
  (missing: 411, chunked: 411, not digits or negative: 400, over the cap: 413);
* ``decode``: the body as strict JSON: UTF-8 only, no NaN/Infinity, no lone surrogates, nesting at most
  ``MAX_DEPTH`` levels, a JSON object at the top;
* ``to_upstream``: what to send to MLflow. An Azure foundation-model body (``input_data``) becomes one MLflow chat
  body per conversation; an MLflow chat body (``messages``) has its typed fields checked; any other MLflow body
  (``dataframe_records``, ``inputs``, ...) goes as it is, its conversations (rows with ``messages``) collected so
  the prompt-length cap still applies.

Every refusal is a ``BodyError`` whose message names the key path and what was expected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tools.serve import scoring_client

MAX_DEPTH = 64  # a chat body nests 4 levels deep; MLflow's own decoder recurses, so refuse long before Python would
_DIGITS = re.compile(r"[0-9]{1,19}")


class BodyError(Exception):
    """A client mistake: ``status`` (4xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class UpstreamRequest:
    """What the endpoint sends upstream: ``calls`` (MLflow bodies, one per conversation for Azure bodies), the
    conversations whose prompt length is checked, each with its ``max_new_tokens`` (None: the model's default)."""

    azure: bool
    calls: list[bytes]
    conversations: list[tuple[list[dict], int | None]] = field(default_factory=list)


def content_length(value: str | None, transfer_encoding: str | None, cap: int) -> int:
    """The body length from the headers; refuse (before reading) what is missing, malformed or over ``cap``."""
    if transfer_encoding is not None:
        raise BodyError(411, "Transfer-Encoding bodies are not accepted: send the JSON body with a Content-Length")
    if value is None:
        raise BodyError(411, "Content-Length is required (a JSON body with its length in bytes)")
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        raise BodyError(400, f"Content-Length: expected a non-negative integer, got {value[:40]!r}")
    length = int(text)
    if length > cap:
        raise BodyError(413, f"the body is {length} bytes; this endpoint takes at most {cap} bytes (--max-body-bytes)")
    return length


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(raw: bytes, max_depth: int = MAX_DEPTH) -> dict:
    """The body as a JSON object, or BodyError(400) saying what is wrong and where."""
    if not raw.strip():
        raise BodyError(400, "the body is empty: expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError(400, f"the body is not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})") from None
    _check_depth(text, max_depth)
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise BodyError(400, f"the body is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except (ValueError, RecursionError) as error:
        raise BodyError(400, f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise BodyError(400, f'the body is a JSON {_kind(body)}: expected an object such as {{"input_data": ...}}')
    _check_strings(body)
    return body


def _check_depth(text: str, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` with a linear scan (brackets inside strings do not count)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                raise BodyError(400, f"the body nests deeper than {max_depth} levels")
        elif char in "]}":
            depth -= 1


def _check_strings(body: Any) -> None:
    """Refuse strings (values and keys) that are not Unicode text: JSON allows lone ``\\ud800`` escapes."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BodyError(400, "a string in the body holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def to_upstream(body: dict) -> UpstreamRequest:
    """Check ``body`` and say what to send upstream."""
    try:
        if "input_data" in body:
            return _upstream_azure(body)
        if "messages" in body:
            return _upstream_chat(body)
        return _upstream_other(body)
    except scoring_client.ScoringError as error:
        raise BodyError(400, str(error)) from None


def _upstream_azure(body: dict) -> UpstreamRequest:
    data = body["input_data"]
    if not isinstance(data, dict):
        raise BodyError(400, f"input_data: expected an object with input_string, got a JSON {_kind(data)}")
    conversations = data.get("input_string")
    if not isinstance(conversations, list) or not conversations:
        raise BodyError(400, "input_data.input_string: expected a non-empty list of conversations")
    parameters = scoring_client.check_parameters(data.get("parameters"))
    calls, checked = [], []
    for index, conversation in enumerate(conversations):
        messages = scoring_client.check_messages(conversation, f"input_data.input_string[{index}]")
        single = {"input_data": {"input_string": [messages], "parameters": parameters}}
        calls.append(json.dumps(scoring_client.azure_to_mlflow(single)).encode("utf-8"))
        checked.append((messages, parameters.get("max_new_tokens")))
    return UpstreamRequest(azure=True, calls=calls, conversations=checked)


def _chat_messages(messages: Any, where: str) -> list[dict]:
    """An OpenAI/MLflow chat ``messages`` list: objects with a string ``role`` and string or null ``content``
    (MLflow's llm/v1/chat signature; tool roles are the model's business)."""
    if not isinstance(messages, list) or not messages:
        raise BodyError(400, f"{where}: expected a non-empty list of {{role, content}} messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BodyError(400, f'{where}[{index}]: expected an object with a string "role"')
        if message.get("content") is not None and not isinstance(message["content"], str):
            raise BodyError(400, f"{where}[{index}].content: expected a string")
    return messages


def _upstream_chat(body: dict) -> UpstreamRequest:
    messages = _chat_messages(body["messages"], "messages")
    params = scoring_client.check_chat_fields(body)
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return UpstreamRequest(azure=False, calls=[raw], conversations=[(messages, params.get("max_new_tokens"))])


def _upstream_other(body: dict) -> UpstreamRequest:
    """MLflow's other bodies pass unchanged; rows holding ``messages`` are checked like chat bodies."""
    rows: list[tuple[str, Any]] = []
    for key in ("dataframe_records", "instances", "inputs"):
        value = body.get(key)
        if isinstance(value, dict):
            rows.append((key, value))
        elif isinstance(value, list):
            rows.extend((f"{key}[{i}]", row) for i, row in enumerate(value))
    conversations = []
    for where, row in rows:
        if isinstance(row, dict) and "messages" in row:
            messages = _chat_messages(row["messages"], f"{where}.messages")
            params = scoring_client.check_chat_fields(row, where)
            conversations.append((messages, params.get("max_new_tokens")))
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return UpstreamRequest(azure=False, calls=[raw], conversations=conversations)
