"""The gate set: chat JSONL rows (``{"messages": [{role, content}, ...]}``, ultrachat's shape) read into
:class:`Example` objects. A row's reference answer is its last assistant turn; its context is everything before
that turn. Reference NLL is scored on every assistant turn of the row (teacher forcing).

Bad input raises :class:`GateError` with one line naming the file, the line and what was expected: an empty file,
a line that is not JSON, a row without ``messages``, a row without an assistant turn.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant")


class GateError(ValueError):
    """The gate set cannot be used; ``str(error)`` is one line."""


@dataclass(frozen=True)
class Example:
    """One gate row: the full conversation, the context before the reference answer, and that answer."""

    row_id: str
    messages: tuple[dict[str, str], ...]
    context: tuple[dict[str, str], ...]
    reference: str


@dataclass(frozen=True)
class GateSet:
    path: str
    sha256: str
    examples: tuple[Example, ...]


def _example(value: Any, where: str, line: int) -> Example:
    if not isinstance(value, dict):
        raise GateError(f"{where}:{line}: expected a JSON object with 'messages'")
    messages = value.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GateError(f"{where}:{line}: messages: expected a non-empty list of {{role, content}}")
    clean: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(
            message.get("content"), str
        ):
            raise GateError(f"{where}:{line}: messages[{i}]: expected {{role: system|user|assistant, content: str}}")
        clean.append({"role": message["role"], "content": message["content"]})
    last = max((i for i, m in enumerate(clean) if m["role"] == "assistant"), default=None)
    if last is None:
        raise GateError(f"{where}:{line}: messages: no assistant turn (nothing to score; expected chat rows that "
                        "end with the assistant's answer)")  # fmt: skip
    if not any(m["role"] == "user" for m in clean[:last]):
        raise GateError(f"{where}:{line}: messages: no user turn before the last assistant turn")
    row_id = value.get("prompt_id")
    return Example(
        row_id=str(row_id) if isinstance(row_id, str | int) else f"line-{line}",
        messages=tuple(clean[: last + 1]),
        context=tuple(clean[:last]),
        reference=clean[last]["content"],
    )


def read_gate(path: str | os.PathLike[str], limit: int | None = None) -> GateSet:
    """Read a gate JSONL file (or a folder holding exactly one ``*.jsonl``); ``limit``: the first N rows only."""
    source = Path(path)
    if source.is_dir():
        files = sorted(source.glob("*.jsonl"))
        if len(files) != 1:
            raise GateError(f"{source}: expected one *.jsonl file in the folder, found {len(files)}")
        source = files[0]
    try:
        raw = source.read_bytes()
    except OSError as error:
        raise GateError(f"{source}: cannot read the gate set ({error.strerror or error})") from None
    examples: list[Example] = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            raise GateError(f"{source}:{number}: not a JSON line ({error})") from None
        examples.append(_example(value, str(source), number))
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise GateError(f"{source}: the gate set is empty (expected chat JSONL rows; `python -m tools data prepare` "
                        "writes gate_sft.jsonl)")  # fmt: skip
    return GateSet(str(source), hashlib.sha256(raw).hexdigest(), tuple(examples))
