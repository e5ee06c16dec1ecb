"""The streaming pipeline: each batch of a source split is cut to the selected rows, checked row by row
(``tools.data.rows``) or by the vectorised twin (``tools.data.arrow``) when the batch allows it, and the good rows
are encoded into their outputs. Every row read is either written or counted with a reason: a row that cannot be
read (invalid UTF-8, a line that is not JSON) is a bad row like any other, never the end of the file.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tools.core.errors import UserError
from tools.data.options import Options
from tools.data.outputs import BadRowLog, Output, where
from tools.data.rows import RowDefect, check_row, conversation_size, first_user_content, normalize_prompt_id
from tools.data.selection import Plan
from tools.data.sources import RowBatch, Source, iter_batches

Record = tuple[Any, Any, Any]  # (prompt_id, messages, prompt)


# ----------------------------------------------------------------------------------------------------------------
# Arrow columns to Python values


def _decode_json_text(value: Any) -> Any:
    """A value of a Json-typed column (``datasets`` types mixed JSON fields so) arrives as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value  # the row rules report it (e.g. "messages[1] is a str, not an object")


def _json_decoder(type_: Any) -> Callable[[Any], Any] | None:
    """A function that decodes every Json-typed value nested anywhere in ``type_`` (None: nothing to decode)."""
    import pyarrow as pa

    if isinstance(type_, pa.BaseExtensionType):
        return _decode_json_text
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        inner = _json_decoder(type_.value_type)
        if inner is None:
            return None
        return lambda value: None if value is None else [inner(item) for item in value]
    if pa.types.is_struct(type_):
        fields = {type_.field(i).name: _json_decoder(type_.field(i).type) for i in range(type_.num_fields)}
        fields = {name: decode for name, decode in fields.items() if decode is not None}
        if not fields:
            return None
        return lambda value: (
            None if value is None else {k: (fields[k](v) if k in fields else v) for k, v in value.items()}
        )
    return None


def column_values(table: Any, name: str) -> list[Any] | None:
    """A column as Python values, Json-typed parts decoded at every nesting level (None: no such column)."""
    if name not in table.column_names:
        return None
    column = table.column(name)
    values = column.to_pylist()
    decode = _json_decoder(column.type)
    return values if decode is None else [decode(value) for value in values]


def invalid_utf8_rows(table: Any) -> dict[int, RowDefect]:
    """Rows of an Arrow batch holding a string that is not UTF-8 (a parquet file can carry such bytes)."""
    import pyarrow as pa

    try:
        table.validate(full=True)
        return {}
    except pa.ArrowInvalid:
        pass
    problems = {}
    for index in range(table.num_rows):
        row = table.take([index])  # a copy of the row: a slice validates its whole child arrays
        for name in row.column_names:
            try:
                row.column(name).validate(full=True)
            except pa.ArrowInvalid:
                problems[index] = ("invalid-utf8", f"{name} holds a string that is not valid UTF-8")
                break
    return problems


def _arrow_records(table: Any, problems: dict[int, RowDefect]) -> list[Record | None]:
    import pyarrow as pa

    good = [i for i in range(table.num_rows) if i not in problems]
    part = table.take(pa.array(good, pa.int64())) if problems else table
    pids, messages = column_values(part, "prompt_id"), column_values(part, "messages")
    assert pids is not None and messages is not None
    prompts = column_values(part, "prompt") or [None] * part.num_rows
    records: list[Record | None] = [None] * table.num_rows
    for i, pid, msgs, prompt in zip(good, pids, messages, prompts, strict=True):
        records[i] = (pid, msgs, prompt)
    return records


def _row_records(batch: RowBatch) -> list[Record | None]:
    return [
        None if i in batch.problems else (value.get("prompt_id"), value.get("messages"), value.get("prompt"))
        for i, value in enumerate(batch.values)
    ]


# ----------------------------------------------------------------------------------------------------------------
# The pipeline


class Pipeline:
    def __init__(
        self, options: Options, source: Source, issues: BadRowLog, encoder: json.JSONEncoder, stop: threading.Event
    ) -> None:
        self.options = options
        self.source = source
        self.issues = issues
        self.encoder = encoder
        self.stop = stop

    def run_plan(self, dataset: Any, plan: Plan, progress: Any) -> int:
        """Stream one source split; return the number of source rows read."""
        batches = iter_batches(dataset, self.options.batch_size, self.source, plan.split)
        with contextlib.closing(batches):
            return self._stream(batches, plan, progress)

    def _stream(self, batches: Iterator[Any], plan: Plan, progress: Any) -> int:
        import numpy as np

        offset = 0
        for batch in batches:
            if self.stop.is_set():
                raise KeyboardInterrupt
            base, n = offset, batch.num_rows
            offset += n
            progress.update(n)
            lo, hi = max(plan.start, base), n + base if plan.stop is None else min(plan.stop, base + n)
            if plan.selected_rows is not None:
                window = plan.selected_rows[base : base + n]
                local = np.flatnonzero(window) if len(window) else np.empty(0, dtype=np.int64)
            elif lo > base or hi < base + n:
                local = np.arange(lo - base, max(lo, hi) - base)
            else:
                local = None
            if local is not None:
                if len(local) == 0:
                    if plan.stop is not None and offset >= plan.stop:
                        break
                    continue
                batch = batch.take(local)
                positions = base + local
            else:
                positions = np.arange(base, base + n)
            if plan.test_mask is not None:
                route = plan.test_mask[positions - plan.start].astype(np.int8)
            else:
                route = np.zeros(len(positions), dtype=np.int8)
            if isinstance(batch, RowBatch):
                self._batch_python(_row_records(batch), batch.lines, route, plan, batch.problems, batch.file)
            else:
                for name in ("prompt_id", "messages"):
                    if name not in batch.column_names:
                        raise UserError(f"--source {self.source.display}: split {plan.split} has no {name!r} column")
                problems = invalid_utf8_rows(batch)
                if problems or not (self.options.fast and self._batch_fast(batch, positions, route, plan)):
                    self._batch_python(_arrow_records(batch, problems), positions.tolist(), route, plan, problems)
            if plan.stop is not None and offset >= plan.stop:
                break
        return offset

    @staticmethod
    def _prefetch(plan: Plan, pids: list[Any]) -> None:
        """Look a batch's prompt_ids up in every id set ``_admit`` will ask, in one vectorised search each."""
        normalized = [pid for pid in map(normalize_prompt_id, pids) if pid is not None]
        sets = {id(s): s for out in plan.outputs for s in (out.seen, out.partner.seen if out.partner else None) if s}
        for seen in sets.values():
            seen.prefetch(normalized)

    def _admit(
        self, out: Output, row: int, pid: Any, problem: RowDefect | None, split: str, file: str | None = None
    ) -> bool:
        """Apply leakage, uniqueness and the bad-row policy to one row; True when it is written."""
        if problem is None:
            pid = normalize_prompt_id(pid)
            if out.partner is not None and pid in out.partner.seen:
                out.leaked += 1
                detail = f"prompt_id {pid} also in {out.partner.name}"
                if self.options.on_leak == "fail":
                    raise UserError(f"{out.name} {where(row, file)}: leaked-from-train: {detail} (--on-leak fail)", 1)
                if self.options.on_leak == "drop":
                    problem = ("leaked-from-train", detail)
                else:
                    self.issues.add(out.name, row, "leaked-from-train", detail, pid, "kept", file)
            if problem is None and not out.seen.add(pid):
                problem = ("duplicate-prompt-id", f"prompt_id {pid} seen earlier in {split}")
        if problem is None:
            out.written += 1
            return True
        reason, detail = problem
        if self.options.on_bad_row == "fail":
            raise UserError(f"{out.name} {where(row, file)}: {reason}: {detail} (--on-bad-row fail)", 1)
        out.skipped[reason] += 1
        shown = pid if isinstance(pid, str | int) and not isinstance(pid, bool) else None
        self.issues.add(out.name, row, reason, detail, shown, "skipped", file)
        return False

    def _batch_python(
        self,
        records: list[Record | None],
        rows: list[int],
        route: Any,
        plan: Plan,
        problems: dict[int, RowDefect],
        file: str | None = None,
    ) -> None:
        """Per-row path: any schema (e.g. JSON sources with mixed types); the reference for the fast path."""
        self._prefetch(plan, [record[0] for record in records if record is not None])
        lines: list[list[str]] = [[] for _ in plan.outputs]
        for i, (record, row, k) in enumerate(zip(records, rows, route.tolist(), strict=True)):
            out = plan.outputs[k]
            out.selected += 1
            if record is None:
                self._admit(out, row, None, problems[i], plan.split, file)
                continue
            pid, msgs, prompt = record
            problem = check_row(pid, msgs, require_final_assistant=out.sft)
            if not self._admit(out, row, pid, problem, plan.split, file):
                continue
            if not isinstance(prompt, str):
                prompt = first_user_content(msgs)
            turns, chars = conversation_size(msgs)
            out.turns.append(turns)
            out.chars.append(chars)
            pid = normalize_prompt_id(pid)
            lines[k].append(self.encoder.encode({"prompt": prompt, "prompt_id": pid, "messages": msgs}))
        for out, out_lines in zip(plan.outputs, lines, strict=True):
            if out_lines:
                out.write_text("\n".join(out_lines) + "\n")

    def _batch_fast(self, table: Any, rows: Any, route: Any, plan: Plan) -> bool:
        """Vectorised path for canonical batches (same rules, byte-identical output); False = use the Python path."""
        import numpy as np
        import pyarrow.compute as pc

        from tools.data import arrow as chat_arrow

        if not chat_arrow.canonical(table):
            return False
        sft = plan.outputs[0].sft
        good = chat_arrow.good_rows(table, require_final_assistant=sft)
        problems: dict[int, RowDefect] = {}
        bad = np.flatnonzero(~good)
        if len(bad):
            subset = table.take(bad)
            for i, pid, msgs in zip(
                bad.tolist(), subset.column("prompt_id").to_pylist(), subset.column("messages").to_pylist(), strict=True
            ):
                problem = check_row(pid, msgs, require_final_assistant=sft)
                if problem is None:
                    return False  # the two rule sets disagree: the per-row rules decide
                problems[i] = problem
        good_table = table.filter(good) if len(bad) else table
        lines = chat_arrow.jsonl_lines(good_table) if good_table.num_rows else None
        if good_table.num_rows and lines is None:
            return False
        # no side effects before this point: the batch can still go to the Python path
        pids = table.column("prompt_id").to_pylist()
        self._prefetch(plan, pids)
        keep = np.zeros(len(rows), dtype=bool)
        for i, (row, k) in enumerate(zip(rows.tolist(), route.tolist(), strict=True)):
            out = plan.outputs[k]
            out.selected += 1
            keep[i] = self._admit(out, row, pids[i], problems.get(i), plan.split)
        if not good_table.num_rows:
            return True
        good_index = np.flatnonzero(good)
        turns = pc.list_value_length(good_table.column("messages").combine_chunks()).to_numpy()
        chars = chat_arrow.content_chars(good_table)
        for k, out in enumerate(plan.outputs):
            chosen = np.flatnonzero(keep[good_index] & (route[good_index] == k))
            if not len(chosen):
                continue
            part = lines if len(chosen) == len(good_index) else lines.take(chosen)
            out.write_bytes(chat_arrow.string_bytes(part))
            out.turns.extend(turns[chosen].tolist())
            out.chars.extend(chars[chosen].tolist())
        return True
