"""The vectorised twin of ``tools.data.rows`` for Arrow batches in the canonical ultrachat schema.

``good_rows`` applies the same per-row rules as ``chat_rows.check_row`` with Arrow/numpy kernels (it never marks a
row good that ``check_row`` rejects: tests compare the two), and ``jsonl_lines`` renders rows as JSON text
byte-identical to ``json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))``. Batches outside the canonical
schema, or with rare control characters, return None and take the per-row Python path instead.
Imported lazily (pyarrow, numpy) by ``tools.data.prepare`` only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# what json's C encoder writes for each byte it escapes, besides other control characters (\u00XX)
_SHORT_ESCAPES: dict[int, str] = {0x22: '\\"', 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x08: "\\b", 0x0C: "\\f"}
_ROLES = pa.array(["user", "assistant", "system"])


def _is_string(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def canonical(table: pa.Table) -> bool:
    """prompt, prompt_id: strings; messages: list<struct<content: string, role: string>> (any field order)."""
    schema = table.schema
    if not all(name in schema.names for name in ("prompt", "prompt_id", "messages")):
        return False
    if not (_is_string(schema.field("prompt").type) and _is_string(schema.field("prompt_id").type)):
        return False
    messages = schema.field("messages").type
    if not (pa.types.is_list(messages) or pa.types.is_large_list(messages)):
        return False
    item = messages.value_type
    if not pa.types.is_struct(item) or sorted(item.field(i).name for i in range(item.num_fields)) != [
        "content",
        "role",
    ]:
        return False
    return all(_is_string(item.field(i).type) for i in range(item.num_fields))


def _not_blank(strings: pa.Array) -> np.ndarray:
    """Non-null, non-empty, not whitespace only (Arrow's utf8_is_space agrees with str.isspace per code point)."""
    ok = pc.and_(pc.is_valid(strings), pc.invert(pc.utf8_is_space(strings.fill_null(" "))))
    ok = pc.and_(ok, pc.greater(pc.binary_length(strings.fill_null("")), 0))
    return np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)


def good_rows(table: pa.Table, *, require_final_assistant: bool) -> np.ndarray:
    """Boolean mask of rows passing every ``check_row`` rule (prompt_id uniqueness excluded)."""
    n = table.num_rows
    good = _not_blank(table.column("prompt_id").combine_chunks())
    messages = table.column("messages").combine_chunks()
    good &= np.asarray(messages.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = np.asarray(pc.list_value_length(messages).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    good &= lengths > 0
    flat = pc.list_flatten(messages)  # null lists contribute nothing
    parents = np.asarray(pc.list_parent_indices(messages).to_numpy(zero_copy_only=False), dtype=np.int64)
    if len(flat) == 0:
        return good
    element_ok = np.asarray(flat.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    roles = flat.field("role")
    element_ok &= np.asarray(pc.is_in(roles, value_set=_ROLES).fill_null(False).to_numpy(zero_copy_only=False))
    element_ok &= _not_blank(flat.field("content"))
    role_codes = np.full(len(flat), -1, dtype=np.int8)  # 0 user, 1 assistant, 2 system
    for code, name in enumerate(("user", "assistant", "system")):
        role_codes[np.asarray(pc.equal(roles, name).fill_null(False).to_numpy(zero_copy_only=False))] = code
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    position = np.arange(len(flat), dtype=np.int64) - starts[parents]
    first_system = np.zeros(n, dtype=bool)
    nonempty = lengths > 0
    first_system[nonempty] = role_codes[starts[:-1][nonempty]] == 2
    system = role_codes == 2
    element_ok &= ~system | (position == 0)
    q = position - first_system[parents]
    expected = np.where(q % 2 == 0, 0, 1)
    element_ok &= system | (role_codes == expected)
    bad_parents = parents[~element_ok]
    good[bad_parents] = False
    last_codes = np.full(n, -1, dtype=np.int8)
    last_codes[nonempty] = role_codes[starts[1:][nonempty] - 1]
    good &= (last_codes == 1) if require_final_assistant else (last_codes != 2)
    return good


def _escape(strings: pa.Array) -> pa.Array | None:
    """JSON string-body escaping with Arrow kernels; None when a rare control character needs \\u00XX."""
    strings = strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    data = strings.buffers()[2]
    if data is None or data.size == 0:
        return strings
    raw = np.frombuffer(data, dtype=np.uint8)
    control = raw < 0x20
    present = set(np.unique(raw[control]).tolist()) if control.any() else set()
    if present - set(_SHORT_ESCAPES):
        return None
    if np.count_nonzero(raw == 0x5C):  # backslash first, so later escapes are not doubled
        strings = pc.replace_substring(strings, "\\", "\\\\")
    if np.count_nonzero(raw == 0x22):
        present.add(0x22)
    for code in sorted(present):
        strings = pc.replace_substring(strings, chr(code), _SHORT_ESCAPES[code])
    return strings


def jsonl_lines(table: pa.Table) -> pa.Array | None:
    """One ``{"prompt": .., "prompt_id": .., "messages": [..]}\\n`` string per row (rows must be good)."""
    prompt = table.column("prompt").combine_chunks()
    if prompt.null_count:
        return None  # the Python path fills a missing prompt from the first user turn
    messages = table.column("messages").combine_chunks()
    flat = pc.list_flatten(messages)
    item = messages.type.value_type
    parts: list[Any] = []
    for i in range(item.num_fields):
        name = item.field(i).name
        escaped = _escape(flat.field(name))
        if escaped is None:
            return None
        parts += [("{" if i == 0 else ", ") + f'"{name}": "', escaped, '"']
    parts[-1] = '"}'
    message_json = pc.binary_join_element_wise(*parts, "")
    offsets = pa.array(np.concatenate([[0], np.cumsum(pc.list_value_length(messages).to_numpy())]).astype(np.int32))
    per_row = pc.binary_join(pa.ListArray.from_arrays(offsets, message_json), ", ")
    prompt_esc, pid_esc = _escape(prompt), _escape(table.column("prompt_id").combine_chunks())
    if prompt_esc is None or pid_esc is None:
        return None
    return pc.binary_join_element_wise(
        '{"prompt": "', prompt_esc, '", "prompt_id": "', pid_esc, '", "messages": [', per_row, "]}\n", ""
    )


def string_bytes(strings: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a string array (zero-copy)."""
    offsets = np.frombuffer(
        strings.buffers()[1], dtype=np.int64 if pa.types.is_large_string(strings.type) else np.int32
    )
    start, stop = int(offsets[strings.offset]), int(offsets[strings.offset + len(strings)])
    data = strings.buffers()[2]
    return memoryview(data)[start:stop] if data is not None else memoryview(b"")


def content_chars(table: pa.Table) -> np.ndarray:
    """Characters of content per row (code points, as Python's len)."""
    messages = table.column("messages").combine_chunks()
    lengths = pc.utf8_length(pc.list_flatten(messages).field("content")).to_numpy(zero_copy_only=False)
    per_message = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    counts = pc.list_value_length(messages).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = np.cumsum(counts)
    return per_message[ends] - per_message[ends - counts]
