"""The chat-row contract: what one ultrachat-shaped JSONL row must look like, checked by pure functions.

A row is ``{prompt, prompt_id, messages}``; ``messages`` is a non-empty list of ``{content, role}`` objects with
``role`` in user/assistant/system and non-empty string ``content``; roles alternate user/assistant after an optional
leading system turn, starting with user; SFT conversations end with an assistant turn. Uniqueness of ``prompt_id``
is a property of a whole split and is tracked by :class:`SeenIds`, not by :func:`check_row`.
No third-party imports here: this module is imported by the CLI and by tests directly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

ROLES = frozenset({"user", "assistant", "system"})

# Reason codes, in the order the checks run (a row is reported with the first reason that applies).
REASONS: dict[str, str] = {
    "invalid-utf8": "the row holds bytes that are not UTF-8 (JSON Lines: the line; parquet: a string)",
    "unparseable-line": "a JSON Lines line that is not JSON (e.g. a truncated last line) or is too long",
    "not-an-object": "a JSON Lines line that is JSON but not an object",
    "missing-prompt-id": "prompt_id is missing, empty or not a string",
    "messages-not-list": "messages is missing or not a list",
    "messages-empty": "messages is an empty list",
    "bad-message": "a message is not an object",
    "bad-role": "a message role is not user, assistant or system",
    "empty-content": "a message content is missing, not a string, or blank",
    "roles-not-alternating": "roles do not alternate user/assistant after an optional leading system turn",
    "no-final-assistant": "an SFT conversation does not end with an assistant turn",
    "duplicate-prompt-id": "prompt_id already seen earlier in the same source split",
    "leaked-from-train": "prompt_id of a test row also occurs in the paired train split (dropped by --on-leak drop)",
}

RowDefect = tuple[str, str]  # (reason code, human detail)


def is_sft_split(split: str) -> bool:
    """SFT rules (final assistant turn required) apply to splits whose name mentions ``sft``."""
    return "sft" in split.lower()


def normalize_prompt_id(value: Any) -> str | None:
    """Return the prompt_id as a non-empty string, or None when it is unusable (ints are accepted as text)."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def messages_defect(messages: Any, *, require_final_assistant: bool) -> RowDefect | None:
    """Check one conversation; return ``(reason, detail)`` for the first problem, or None when it is good."""
    if not isinstance(messages, list):
        kind = "missing" if messages is None else f"a {type(messages).__name__}"
        return "messages-not-list", f"messages is {kind}, not a list"
    if not messages:
        return "messages-empty", "messages is an empty list"
    expected = "user"
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return "bad-message", f"messages[{index}] is a {type(message).__name__}, not an object"
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:  # a list or a mapping is unhashable
            return "bad-role", f"messages[{index}].role is {repr(role)[:60]}"
        content = message.get("content")
        if not isinstance(content, str) or not content or content.isspace():
            what = "missing" if content is None else ("blank" if isinstance(content, str) else "not a string")
            return "empty-content", f"messages[{index}].content is {what}"
        if role == "system":
            if index != 0:
                return "roles-not-alternating", f"messages[{index}] is a system turn after the first position"
            continue
        if role != expected:
            return "roles-not-alternating", f"messages[{index}].role is {role!r}, expected {expected!r}"
        expected = "assistant" if role == "user" else "user"
    last_role = messages[-1].get("role")
    if require_final_assistant and last_role != "assistant":
        return "no-final-assistant", f"last turn is {last_role!r}, expected 'assistant'"
    if last_role == "system":
        return "roles-not-alternating", "conversation has only a system turn"
    return None


def check_row(prompt_id: Any, messages: Any, *, require_final_assistant: bool) -> RowDefect | None:
    """Check the per-row rules (everything except uniqueness and leakage)."""
    if normalize_prompt_id(prompt_id) is None:
        shown = "missing" if prompt_id is None else repr(prompt_id)[:40]
        return "missing-prompt-id", f"prompt_id is {shown}"
    return messages_defect(messages, require_final_assistant=require_final_assistant)


def first_user_content(messages: list[dict[str, Any]]) -> str | None:
    """The first user message's content (used as ``prompt`` when the source has no prompt)."""
    for message in messages:
        if message.get("role") == "user":
            return message.get("content")
    return None


def conversation_size(messages: list[dict[str, Any]]) -> tuple[int, int]:
    """(turns, characters of content) of a checked conversation."""
    return len(messages), sum(len(message["content"]) for message in messages)


def distribution(values: Sequence[int]) -> dict[str, float | int | None]:
    """min / median / p95 / max of integer values (nearest-rank p95; median averages the middle pair)."""
    if not values:
        return {"min": None, "median": None, "p95": None, "max": None}
    import numpy as np

    ordered = np.sort(np.asarray(values, dtype=np.int64))  # not a list of Python ints: 8 bytes a value, not ~40
    n = len(ordered)
    mid = n // 2
    median: float | int = int(ordered[mid]) if n % 2 else (int(ordered[mid - 1]) + int(ordered[mid])) / 2
    if isinstance(median, float) and median.is_integer():
        median = int(median)
    p95 = int(ordered[max(0, math.ceil(0.95 * n) - 1)])
    return {"min": int(ordered[0]), "median": median, "p95": p95, "max": int(ordered[-1])}


class SeenIds:
    """Set of prompt_ids seen so far, kept as 64-bit digests, not the 6.7 KB row itself.

    Digests live in a sorted numpy array (8 bytes a row) plus a Python set of the latest ones (~80 bytes a row),
    folded into the array by ``prefetch`` once it holds ``FOLD_AT``; a Python set of every id cost ~40 MB at
    ultrachat's 515k rows, the array costs 4 MB. ``prefetch`` looks a batch's ids up in the array in one vectorised
    search; ``add`` and ``in`` then answer from Python sets (any id not prefetched is searched on its own).
    """

    FOLD_AT = 1 << 15

    def __init__(self) -> None:
        self._recent: set[int] = set()
        self._sorted: Any = None  # numpy uint64, sorted, disjoint from _recent
        self._keys: dict[str, int] = {}  # the prefetched batch: id -> digest
        self._hits: set[int] = set()  # its digests present in _sorted

    @staticmethod
    def _digest(prompt_id: str) -> int:
        # blake2b-64 is stable across processes (unlike hash()); collisions at 1e6 ids have probability ~3e-8.
        data = prompt_id.encode("utf-8", "surrogatepass")  # a JSON source can hold lone surrogates ("\\ud800")
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")

    def _key(self, prompt_id: str) -> int:
        key = self._keys.get(prompt_id)
        return self._digest(prompt_id) if key is None else key

    def prefetch(self, prompt_ids: Sequence[str]) -> None:
        """Get ready for a batch: fold the recent digests into the array, look the batch's ids up there at once."""
        import numpy as np

        if len(self._recent) >= self.FOLD_AT:
            recent = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
            self._sorted = np.sort(recent if self._sorted is None else np.concatenate([self._sorted, recent]))
            self._recent = set()
        self._keys = {pid: self._digest(pid) for pid in prompt_ids}
        self._hits = set()
        if self._sorted is not None and len(self._sorted) and self._keys:
            keys = np.fromiter(self._keys.values(), dtype=np.uint64, count=len(self._keys))
            where = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
            self._hits = set(keys[self._sorted[where] == keys].tolist())

    def _in_sorted(self, key: int, prompt_id: str) -> bool:
        if self._sorted is None or not len(self._sorted):
            return False
        if prompt_id in self._keys:
            return key in self._hits
        import numpy as np

        index = int(np.searchsorted(self._sorted, np.uint64(key)))
        return index < len(self._sorted) and int(self._sorted[index]) == key

    def add(self, prompt_id: str) -> bool:
        """Record ``prompt_id``; return False when it was already present."""
        key = self._key(prompt_id)
        if key in self._recent or self._in_sorted(key, prompt_id):
            return False
        self._recent.add(key)
        return True

    def __contains__(self, prompt_id: object) -> bool:
        if not isinstance(prompt_id, str):
            return False
        key = self._key(prompt_id)
        return key in self._recent or self._in_sorted(key, prompt_id)

    def __len__(self) -> int:
        return len(self._recent) + (0 if self._sorted is None else len(self._sorted))
