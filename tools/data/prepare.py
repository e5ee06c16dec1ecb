"""Data preparation: ultrachat_200k (hub id, hub-layout folder, or JSONL/parquet files) into checked chat JSONL.

``python -m tools data prepare`` streams each split through the real ``datasets.load_dataset(..., streaming=True)``
in Arrow batches (memory does not grow with the data), samples it deterministically for a seed, checks every
selected row (``tools.data.rows``), writes ``{prompt, prompt_id, messages}`` JSONL atomically, and describes the
result in ``manifest.json`` (plus ``issues.jsonl`` listing every skipped or leaked row).
``python -m tools data sample`` writes the bundled synthetic hub-layout sample (``tools.data.sample``).

Two selection modes:
  ``--splits train_sft,test_sft --percent 5``   a seeded sample of 5 % of each split, in source order.
  ``--split 'train_sft[:1%]' --test-size 0.2``  the slice (same rounding as ``datasets`` split syntax), then a
                                              seeded train/test split -> ``train_sft.jsonl`` + ``test_sft.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from tools.core.errors import UserError
from tools.core.files import atomic_write_text, atomic_writer
from tools.data.rows import (
    REASONS,
    SeenIds,
    check_row,
    conversation_size,
    distribution,
    first_user_content,
    is_sft_split,
    normalize_prompt_id,
)

DEFAULT_SOURCE = "HuggingFaceH4/ultrachat_200k"
DEFAULT_SPLITS = "train_sft,test_sft,train_gen,test_gen"
DEFAULT_OUT = "data/prepared"
MANIFEST = "manifest.json"
ISSUES = "issues.jsonl"
STDERR_ISSUE_LINES = 20
HUB_PROBE_TIMEOUT_S = 3.0
MANIFEST_FORMAT = 1
WRITER_QUEUE = 4  # batches in flight per output file

_SPLIT_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:\[(?P<start>\d+%?)?:(?P<stop>\d+%?)?\])?$")
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHARD_RE = re.compile(r"-\d{5}-of-\d{5}.*$")
_DATA_EXTENSIONS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


# ----------------------------------------------------------------------------------------------------------------
# Pure argument parsing


@dataclass(frozen=True)
class SliceSpec:
    """``name[start:stop]`` with each bound an absolute row number or a percentage (None = open)."""

    name: str
    start: tuple[int, bool] | None = None  # (value, is_percent)
    stop: tuple[int, bool] | None = None

    @property
    def needs_length(self) -> bool:
        return any(bound is not None and bound[1] for bound in (self.start, self.stop))

    def bounds(self, length: int | None) -> tuple[int, int | None]:
        """Absolute [start, stop); percentages round like ``datasets`` (``round(pct * n / 100)``)."""

        def absolute(bound: tuple[int, bool] | None, default: int | None) -> int | None:
            if bound is None:
                return default
            value, is_percent = bound
            if is_percent:
                assert length is not None
                return int(round(value * length / 100.0))
            return value if length is None else min(value, length)

        start = absolute(self.start, 0) or 0
        stop = absolute(self.stop, length)
        if stop is not None and stop < start:
            stop = start
        return start, stop


def parse_split(text: str) -> SliceSpec:
    """Parse ``train_sft``, ``train_sft[:1%]``, ``train_sft[100:200]``; raise UserError on bad syntax."""
    match = _SPLIT_RE.match(text.strip())
    if not match:
        raise UserError(f"--split: {text!r} is not 'NAME' or 'NAME[START:STOP]' (e.g. 'train_sft[:1%]')")

    def bound(raw: str | None) -> tuple[int, bool] | None:
        if raw is None:
            return None
        is_percent = raw.endswith("%")
        value = int(raw.rstrip("%"))
        if is_percent and value > 100:
            raise UserError(f"--split: {text!r}: {raw} is more than 100%")
        return value, is_percent

    return SliceSpec(match["name"], bound(match["start"]), bound(match["stop"]))


def parse_percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--percent: {text!r} is not a number") from None
    if not (0 < value <= 100) or math.isnan(value):
        raise UserError(f"--percent: {text} is out of range (0, 100]")
    return value


def parse_test_size(text: str) -> float | int:
    """A fraction in (0, 1) or a whole number of rows >= 1."""
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--test-size: {text!r} is not a number") from None
    if 0 < value < 1:
        return value
    if value >= 1 and value.is_integer():
        return int(value)
    raise UserError(f"--test-size: {text} must be a fraction in (0, 1) or a whole number of rows")


def parse_seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--seed: {text!r} is not an integer") from None


def parse_splits(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UserError("--splits: no split names given")
    for name in names:
        if not _SPLIT_RE.match(name) or "[" in name:
            raise UserError(f"--splits: {name!r} is not a split name (use --split for slices)")
    if len(set(names)) != len(names):
        raise UserError(f"--splits: {text!r} names a split twice")
    return names


def pair_name(split: str) -> str | None:
    """The train split a test split is checked against for leakage (test_sft -> train_sft)."""
    return "train" + split[4:] if split.startswith("test") else None


def slice_output_names(split: str) -> tuple[str, str]:
    """Output names for ``--split``: train_sft -> (train_sft, test_sft); rows -> (train_rows, test_rows)."""
    for prefix in ("train", "test"):
        if split.startswith(prefix):
            stem = split[len(prefix) :]
            return f"train{stem}", f"test{stem}"
    return f"train_{split}", f"test_{split}"


def seeded_rng(seed: int, *parts: str) -> random.Random:
    return random.Random(":".join([str(seed), *parts]))


def display_path(path: str | Path) -> str:
    """Paths in messages and the manifest: relative to the working directory when inside it."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------------------------
# Sources


@dataclass
class Source:
    text: str
    kind: str  # "hub" | "hub-layout" | "json" | "parquet"
    path: str  # first argument to load_dataset
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return self.text if self.kind == "hub" else display_path(self.text)


def _split_of_file(path: Path) -> str:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return _SHARD_RE.sub("", stem)


def resolve_source(text: str) -> Source:
    """Decide how ``load_dataset`` reads ``--source`` (raises UserError for paths that do not exist)."""
    path = Path(text).expanduser()
    if path.is_dir():
        readme = path / "README.md"
        has_configs = readme.is_file() and "configs:" in readme.read_text(encoding="utf-8", errors="replace")
        if has_configs or (path / "data").is_dir():
            return Source(text, "hub-layout", str(path))
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _DATA_EXTENSIONS)
        if not files:
            raise UserError(f"--source {text}: folder has no README.md with configs:, no data/ and no .jsonl/.parquet")
        return _files_source(text, files)
    if path.is_file():
        if path.suffix not in _DATA_EXTENSIONS:
            raise UserError(f"--source {text}: not a .jsonl, .json or .parquet file")
        return _files_source(text, [path])
    if _HUB_ID_RE.match(text) and not text.startswith("."):
        return Source(text, "hub", text)
    raise UserError(f"--source {text}: no such file or folder (and not a Hugging Face dataset id)")


def _files_source(text: str, files: list[Path]) -> Source:
    builders = {_DATA_EXTENSIONS[p.suffix] for p in files}
    if len(builders) > 1:
        raise UserError(f"--source {text}: mixes JSON and parquet files; keep one format per source")
    data_files: dict[str, list[str]] = {}
    for file in files:
        data_files.setdefault(_split_of_file(file), []).append(str(file))
    builder = builders.pop()
    return Source(text, builder, builder, {"data_files": data_files})


def _hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """One TCP connect to the hub endpoint, bounded in time (DNS included)."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme != "http" else 80)
    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _offline_enabled() -> bool:
    return any(
        os.environ.get(k, "").upper() in {"1", "ON", "YES", "TRUE"} for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _unreachable(source: Source, why: str) -> UserError:
    return UserError(
        f"--source {source.text}: the Hugging Face Hub cannot be reached ({why}) and no local path has that name; "
        "pass --source with a local hub-layout folder or JSONL/parquet files"
    )


def open_source(source: Source, revision: str | None) -> Any:
    """``load_dataset(..., streaming=True)``: an IterableDatasetDict, or a one-line UserError."""
    if source.kind == "hub" and not _offline_enabled() and not _hub_reachable():
        raise _unreachable(source, f"no connection within {HUB_PROBE_TIMEOUT_S:.0f} s")
    import datasets
    from datasets.exceptions import DatasetsError

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    kwargs = dict(source.kwargs)
    if revision and source.kind == "hub":
        kwargs["revision"] = revision
    if source.kind != "json":
        # pyarrow pre-buffers every row group of a file it scans and keeps the buffers until the file is done:
        # RSS grew by the compressed file size (~0.75 GB for train_gen). Read row group by row group instead.
        import pyarrow.dataset as pds

        kwargs["fragment_scan_options"] = pds.ParquetFragmentScanOptions(pre_buffer=False)
    try:
        try:
            return datasets.load_dataset(source.path, streaming=True, **kwargs)
        except ValueError as exc:
            if "fragment_scan_options" not in str(exc):
                raise
            kwargs.pop("fragment_scan_options")  # not a parquet builder (e.g. a hub-layout folder of JSONL)
            return datasets.load_dataset(source.path, streaming=True, **kwargs)
    except ConnectionError as exc:
        if source.kind == "hub":
            raise _unreachable(source, "offline mode is on" if _offline_enabled() else "connection failed") from None
        raise UserError(f"--source {source.text}: {_first_line(exc)}") from None
    except (DatasetsError, OSError, ValueError, TypeError) as exc:
        raise UserError(f"--source {source.text}: cannot load: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# ----------------------------------------------------------------------------------------------------------------
# Outputs


@dataclass
class Output:
    """One output JSONL file and everything counted about it."""

    name: str
    source_split: str
    sft: bool
    seen: SeenIds  # prompt_ids written from the same source split (duplicate check)
    partner: Output | None = None  # train output a test output is checked against for leakage
    handle: IO[bytes] | None = None
    sha256: Any = field(default_factory=hashlib.sha256)
    bytes: int = 0
    selected: int = 0
    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    leaked: int = 0
    turns: array = field(default_factory=lambda: array("I"))
    chars: array = field(default_factory=lambda: array("Q"))

    @property
    def file(self) -> str:
        return f"{self.name}.jsonl"

    def write_text(self, text: str) -> None:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a JSON source: keep them, \u-escaped
            data = text.encode("utf-8", "backslashreplace")
        self.write_bytes(data)

    queue: Any = None  # bounded queue feeding the writer thread (None: write inline)
    thread: threading.Thread | None = None
    error: BaseException | None = None

    def write_bytes(self, data: bytes | memoryview) -> None:
        self.bytes += len(data)
        if self.queue is None:
            self._write(data)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(data)  # blocks when the writer is WRITER_QUEUE batches behind: memory stays bounded

    def _write(self, data: bytes | memoryview) -> None:
        assert self.handle is not None
        self.handle.write(data)
        self.sha256.update(data)

    def start_writer(self) -> None:
        """Hash and write on a thread (both release the GIL), overlapping the Arrow work of the next batch."""
        import queue

        self.queue = queue.Queue(maxsize=WRITER_QUEUE)

        def drain() -> None:
            while (item := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        self._write(item)
                    except BaseException as exc:  # re-raised in the main thread
                        self.error = exc

        self.thread = threading.Thread(target=drain, name=f"write-{self.name}", daemon=True)
        self.thread.start()

    def stop_writer(self) -> None:
        """Flush the queue and join the thread; re-raise a write error (disk full, ...)."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread, self.queue = None, None
        if self.error is not None:
            raise self.error


class Issues:
    """Every skipped or leaked row: full list to a sidecar JSONL, the first few to stderr, counted."""

    def __init__(self, out_dir: Path) -> None:
        self.count = 0
        self.shown: list[str] = []
        self._spool = tempfile.TemporaryFile(dir=out_dir)  # noqa: SIM115 - closed in finish()

    def add(self, split: str, row: int, reason: str, detail: str, prompt_id: Any, action: str) -> None:
        self.count += 1
        record = {
            "split": split,
            "row": row,
            "reason": reason,
            "detail": detail,
            "prompt_id": prompt_id,
            "action": action,
        }
        self._spool.write((json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
        if len(self.shown) < STDERR_ISSUE_LINES:
            self.shown.append(f"{action} {split} row {row}: {reason}: {detail}")

    def finish(self, target: Path) -> None:
        """Write the sidecar atomically when there is anything to say, else remove a stale one."""
        if self.count:
            self._spool.seek(0)
            with atomic_writer(target, "wb") as handle:
                shutil.copyfileobj(self._spool, handle)
        else:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()

    def close(self) -> None:
        self._spool.close()


# ----------------------------------------------------------------------------------------------------------------
# The streaming pipeline


@dataclass
class Plan:
    """What to read from one source split and where each selected row goes."""

    split: str
    outputs: list[Output]
    length: int | None  # rows in the source split, when known
    selected_rows: Any = None  # numpy bool mask over the split (None = all rows)
    start: int = 0
    stop: int | None = None
    test_mask: Any = None  # slice mode: bool mask over [start, stop), True = second output


def _decode_json_column(values: list[Any]) -> list[Any]:
    """Columns ``datasets`` typed as Json (mixed types in a JSON source) arrive as JSON text."""
    decoded = []
    for value in values:
        if value is None:
            decoded.append(None)
            continue
        try:
            decoded.append(json.loads(value))
        except ValueError:
            decoded.append(value)
    return decoded


def _column(table: Any, name: str) -> list[Any] | None:
    import pyarrow as pa

    if name not in table.column_names:
        return None
    column = table.column(name)
    if isinstance(column.type, pa.BaseExtensionType):  # e.g. arrow.json for mixed-type JSON fields
        return _decode_json_column(column.cast(column.type.storage_type).to_pylist())
    return column.to_pylist()


def _iter_tables(dataset: Any, batch_size: int, source: Source, split: str) -> Iterator[Any]:
    import pyarrow as pa
    from datasets.exceptions import DatasetsError

    def failed(exc: BaseException) -> UserError:
        return UserError(f"--source {source.display}: split {split}: cannot read rows: {_first_line(exc)}")

    # One shard per parquet row group (``reshard``; other formats keep their shards): pyarrow's threaded scanner
    # reads a fragment ahead of its consumer with no bound short of 1 GiB, so a scan over a whole file queued
    # decoded batches whenever we were slower than the decoder and RSS grew with the file. A one-row-group fragment
    # bounds that read-ahead to one row group; the batches (rebatched to ``batch_size``) and their order are unchanged.
    try:
        dataset = dataset.reshard()  # reads each parquet footer
    except (DatasetsError, pa.ArrowException, OSError, ValueError) as exc:
        raise failed(exc) from None
    iterator = dataset.with_format("arrow").iter(batch_size=batch_size)
    try:
        while True:
            try:
                table = next(iterator)
            except StopIteration:
                return
            except (DatasetsError, pa.ArrowException, OSError, ValueError) as exc:
                raise failed(exc) from None
            yield table
    finally:
        # Close the reader chain now, in this thread: a scan abandoned until interpreter shutdown can hang the exit.
        iterator.close()


def count_rows(dataset: Any, batch_size: int, source: Source, split: str) -> int:
    """A first pass for splits whose length the dataset card does not declare."""
    rows = 0
    with contextlib.closing(_iter_tables(dataset, batch_size, source, split)) as tables:
        for table in tables:
            if _STOP.is_set():
                raise KeyboardInterrupt
            rows += table.num_rows
    return rows


class Pipeline:
    def __init__(self, args: argparse.Namespace, source: Source, issues: Issues, encoder: json.JSONEncoder) -> None:
        self.args = args
        self.source = source
        self.issues = issues
        self.encoder = encoder

    def run_plan(self, dataset: Any, plan: Plan, progress: Any) -> int:
        """Stream one source split; return the number of source rows read."""
        with contextlib.closing(_iter_tables(dataset, self.args.batch_size, self.source, plan.split)) as tables:
            return self._stream(tables, plan, progress)

    def _stream(self, tables: Iterator[Any], plan: Plan, progress: Any) -> int:
        import numpy as np

        offset = 0
        for table in tables:
            if _STOP.is_set():
                raise KeyboardInterrupt
            base, n = offset, table.num_rows
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
                table = table.take(local)
                rows = base + local
            else:
                rows = np.arange(base, base + n)
            for name in ("prompt_id", "messages"):
                if name not in table.column_names:
                    raise UserError(f"--source {self.source.display}: split {plan.split} has no {name!r} column")
            if plan.test_mask is not None:
                route = plan.test_mask[rows - plan.start].astype(np.int8)
            else:
                route = np.zeros(len(rows), dtype=np.int8)
            if not (self.args.fast and self._batch_fast(table, rows, route, plan)):
                self._batch_python(table, rows, route, plan)
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

    def _admit(self, out: Output, row: int, pid: Any, problem: tuple[str, str] | None, split: str) -> bool:
        """Apply leakage, uniqueness and the bad-row policy to one row; True when it is written."""
        if problem is None:
            pid = normalize_prompt_id(pid)
            if out.partner is not None and pid in out.partner.seen:
                out.leaked += 1
                detail = f"prompt_id {pid} also in {out.partner.name}"
                if self.args.on_leak == "fail":
                    raise UserError(f"{out.name} row {row}: leaked-from-train: {detail} (--on-leak fail)", 1)
                if self.args.on_leak == "drop":
                    problem = ("leaked-from-train", detail)
                else:
                    self.issues.add(out.name, row, "leaked-from-train", detail, pid, "kept")
            if problem is None and not out.seen.add(pid):
                problem = ("duplicate-prompt-id", f"prompt_id {pid} seen earlier in {split}")
        if problem is None:
            out.written += 1
            return True
        reason, detail = problem
        if self.args.on_bad_row == "fail":
            raise UserError(f"{out.name} row {row}: {reason}: {detail} (--on-bad-row fail)", 1)
        out.skipped[reason] += 1
        self.issues.add(out.name, row, reason, detail, pid if isinstance(pid, str | int) else None, "skipped")
        return False

    def _batch_python(self, table: Any, rows: Any, route: Any, plan: Plan) -> None:
        """Per-row path: any schema (e.g. JSON sources with mixed types); the reference for the fast path."""
        pids, messages = _column(table, "prompt_id"), _column(table, "messages")
        prompts = _column(table, "prompt") or [None] * len(rows)
        assert pids is not None and messages is not None
        self._prefetch(plan, pids)
        lines: list[list[str]] = [[] for _ in plan.outputs]
        for row, k, pid, msgs, prompt in zip(rows.tolist(), route.tolist(), pids, messages, prompts, strict=True):
            out = plan.outputs[k]
            out.selected += 1
            problem = check_row(pid, msgs, require_final_assistant=out.sft)
            if not self._admit(out, row, pid, problem, plan.split):
                continue
            if prompt is None:
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
        problems: dict[int, tuple[str, str]] = {}
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


def _progress(total: int | None, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        leave=False,
        disable=None if enabled else True,
        dynamic_ncols=True,
    )


def _split_length(dataset: Any, split: str) -> int | None:
    splits = getattr(dataset.info, "splits", None) or {}
    info = splits.get(split) if hasattr(splits, "get") else None
    value = getattr(info, "num_examples", None)
    return int(value) if value else None


def _remove_stale_temps(out_dir: Path, names: list[str]) -> None:
    """Temp files of a killed earlier run (``.<name>.*.tmp``) are never outputs: clear them."""
    if not out_dir.is_dir():
        return
    for name in names:
        for stale in out_dir.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


@contextlib.contextmanager
def _without_torch() -> Iterator[None]:
    """``datasets`` imports torch (~4 s, ~300 MB) for every IterableDataset when torch is installed, only to share
    an epoch counter with DataLoader workers. We never use torch here: hide it for the duration, then restore."""
    import datasets.config

    saved = datasets.config.TORCH_AVAILABLE
    datasets.config.TORCH_AVAILABLE = False
    try:
        yield
    finally:
        datasets.config.TORCH_AVAILABLE = saved


def prepare(args: argparse.Namespace) -> int:
    seed = parse_seed(args.seed)
    if args.split is not None:
        if args.splits is not None or args.percent is not None:
            raise UserError("--split (slice + train/test split) cannot be combined with --splits/--percent")
        mode = "slice"
        spec = parse_split(args.split)
        test_size = parse_test_size(args.test_size)
        split_names = [spec.name]
    else:
        if args.test_size is not None:
            raise UserError("--test-size only applies with --split")
        mode = "percent"
        percent = parse_percent(args.percent if args.percent is not None else "5")
        split_names = parse_splits(args.splits if args.splits is not None else DEFAULT_SPLITS)
    batch_size = args.batch_size
    if batch_size < 1:
        raise UserError(f"--batch-size: {batch_size} must be at least 1")

    source = resolve_source(args.source)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {args.out}: exists and is not a folder")
    dataset_dict = open_source(source, args.revision)
    available = list(dataset_dict.keys())
    for name in split_names:
        if name not in available:
            raise UserError(f"--source {source.display}: no split {name!r}; available: {', '.join(available)}")

    # Outputs and plans -------------------------------------------------------------------------------------
    plans: list[Plan] = []
    if mode == "percent":
        outputs = {name: Output(name, name, is_sft_split(name), SeenIds()) for name in split_names}
        for name, out in outputs.items():
            partner = pair_name(name)
            out.partner = outputs.get(partner) if partner else None
        # train splits first, so a test split's rows can be checked against its train split while streaming
        order = sorted(split_names, key=lambda n: (0 if n.startswith("train") else 1, split_names.index(n)))
        for name in order:
            dataset = dataset_dict[name]
            length = _split_length(dataset, name)
            plan = Plan(name, [outputs[name]], length)
            if percent < 100:
                import numpy as np

                if length is None:
                    length = plan.length = count_rows(dataset, batch_size, source, name)
                k = math.floor(length * percent / 100 + 0.5)
                mask = np.zeros(length, dtype=bool)
                mask[seeded_rng(seed, "percent", name).sample(range(length), k)] = True
                plan.selected_rows = mask
            plans.append(plan)
        output_list = [outputs[name] for name in split_names]
    else:
        import numpy as np

        dataset = dataset_dict[spec.name]
        length = _split_length(dataset, spec.name)
        if spec.needs_length and length is None:
            length = count_rows(dataset, batch_size, source, spec.name)
        start, stop = spec.bounds(length)
        if stop is None:  # open-ended absolute slice on a split of unknown length
            length = count_rows(dataset, batch_size, source, spec.name)
            start, stop = spec.bounds(length)
        size = stop - start
        n_test = math.ceil(test_size * size) if isinstance(test_size, float) else test_size
        if size and n_test >= size:
            raise UserError(f"--test-size {args.test_size}: leaves no training rows out of {size} in {args.split}")
        test_mask = np.zeros(size, dtype=bool)
        test_mask[seeded_rng(seed, "test", spec.name).sample(range(size), n_test if size else 0)] = True
        seen = SeenIds()  # one source split: duplicates are caught across both outputs, so no leakage by construction
        train_name, test_name = slice_output_names(spec.name)
        sft = is_sft_split(spec.name)
        output_list = [Output(train_name, spec.name, sft, seen), Output(test_name, spec.name, sft, seen)]
        plans.append(Plan(spec.name, output_list, length, None, start, stop, test_mask))

    names = [out.file for out in output_list] + [MANIFEST, ISSUES]
    _remove_stale_temps(out_dir, names)
    out_dir.mkdir(parents=True, exist_ok=True)
    issues = Issues(out_dir)
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
    pipeline = Pipeline(args, source, issues, encoder)
    source_rows: dict[str, int | None] = {}
    try:
        with contextlib.ExitStack() as stack:
            for out in output_list:
                out.handle = stack.enter_context(atomic_writer(out_dir / out.file, "wb"))
                out.start_writer()
                stack.callback(out.stop_writer)  # runs before the atomic writer closes, renames or removes
            for plan in plans:
                dataset = dataset_dict[plan.split]
                total = plan.stop if plan.stop is not None else plan.length
                with _progress(total, plan.split, args.progress) as bar:
                    read = pipeline.run_plan(dataset, plan, bar)
                if plan.stop is None and plan.length is not None and read != plan.length:
                    raise UserError(
                        f"--source {source.display}: split {plan.split} declares {plan.length} rows "
                        f"(README dataset_info) but holds {read}; fix or remove dataset_info",
                        1,
                    )
                known = plan.length if plan.length is not None else (read if plan.stop is None else None)
                source_rows[plan.split] = known
        # the JSONL files were renamed into place when the stack closed; the sidecar and the manifest follow
        issues.finish(out_dir / ISSUES)
    finally:
        issues.close()
    manifest = build_manifest(args, mode, seed, source, output_list, source_rows, issues.count)
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    report(out_dir, manifest, issues)
    return 0


def build_manifest(
    args: argparse.Namespace,
    mode: str,
    seed: int,
    source: Source,
    outputs: list[Output],
    source_rows: dict[str, int | None],
    issue_count: int,
) -> dict[str, Any]:
    """Everything about a run that is reproducible: no timestamps, no absolute paths inside the checkout."""
    selection: dict[str, Any]
    if mode == "percent":
        selection = {"percent": parse_percent(args.percent if args.percent is not None else "5")}
    else:
        selection = {"split": args.split, "test_size": parse_test_size(args.test_size)}
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "tool": "python -m tools data prepare",
        "source": source.display,
        "source_kind": source.kind,
        "revision": args.revision if source.kind == "hub" else None,
        "mode": mode,
        **selection,
        "seed": seed,
        "on_bad_row": args.on_bad_row,
        "on_leak": args.on_leak,
        "row_format": ["prompt", "prompt_id", "messages"],
        "outputs": {},
        "skipped_total": sum(sum(out.skipped.values()) for out in outputs),
        "leaked_total": sum(out.leaked for out in outputs),
        "issues_file": ISSUES if issue_count else None,
    }
    for out in outputs:
        entry: dict[str, Any] = {
            "file": out.file,
            "source_split": out.source_split,
            "source_rows": source_rows.get(out.source_split),
            "sft_rules": out.sft,
            "selected": out.selected,
            "written": out.written,
            "skipped": {reason: out.skipped[reason] for reason in REASONS if out.skipped[reason]},
            "leakage": None,
            "bytes": out.bytes,
            "sha256": out.sha256.hexdigest(),
            "turns": distribution(out.turns),
            "chars_per_conversation": distribution(out.chars),
        }
        if out.partner is not None:
            entry["leakage"] = {"checked_against": out.partner.name, "rows": out.leaked, "action": args.on_leak}
        elif len(outputs) == 2 and mode == "slice" and out is outputs[1]:
            entry["leakage"] = {
                "checked_against": outputs[0].name,
                "rows": 0,
                "action": "impossible: one source split, duplicate prompt_ids skipped across both outputs",
            }
        manifest["outputs"][out.name] = entry
    return manifest


def _fmt_dist(dist: dict[str, Any]) -> str:
    if dist["min"] is None:
        return "-"
    median = dist["median"]
    median_text = f"{median:g}" if isinstance(median, float) else str(median)
    return f"{dist['min']}/{median_text}/{dist['p95']}/{dist['max']}"


def report(out_dir: Path, manifest: dict[str, Any], issues: Issues) -> None:
    if issues.count:
        for line in issues.shown:
            print(line, file=sys.stderr)
        rest = issues.count - len(issues.shown)
        where = display_path(out_dir / ISSUES)
        more = f"... and {rest} more; " if rest else ""
        print(f"{more}{issues.count} row issue(s) in total, full list in {where}", file=sys.stderr)
    header = ("file", "selected", "written", "skipped", "leaked", "turns min/med/p95/max", "chars min/med/p95/max")
    table = [header]
    for entry in manifest["outputs"].values():
        leaked = entry["leakage"]["rows"] if entry["leakage"] else 0
        table.append(
            (
                entry["file"],
                str(entry["selected"]),
                str(entry["written"]),
                str(sum(entry["skipped"].values())),
                str(leaked),
                _fmt_dist(entry["turns"]),
                _fmt_dist(entry["chars_per_conversation"]),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"prepared {display_path(out_dir)} from {manifest['source']} ({manifest['mode']}, seed {manifest['seed']})")
    for row in table:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


# ----------------------------------------------------------------------------------------------------------------
# CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="<subcommand>")
    prep = sub.add_parser(
        "prepare",
        help="stream, sample, check and write chat JSONL + manifest.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prep.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="Hugging Face dataset id, hub-layout folder, or .jsonl/.parquet file(s) (default: %(default)s)",
    )
    prep.add_argument(
        "--splits", default=None, help=f"percent mode: comma-separated splits (default: {DEFAULT_SPLITS})"
    )
    prep.add_argument(
        "--percent", default=None, help="percent mode: share of each split to keep, (0, 100] (default: 5)"
    )
    prep.add_argument("--split", default=None, help="slice mode: one split slice, e.g. 'train_sft[:1%%]'")
    prep.add_argument("--test-size", default=None, help="slice mode: test share in (0, 1) or a row count (default 0.2)")
    prep.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    prep.add_argument("--seed", default="42", help="sampling seed (default: %(default)s)")
    prep.add_argument(
        "--on-bad-row",
        choices=("skip", "fail"),
        default="skip",
        help="skip (report and count) or fail on the first bad row (default: %(default)s)",
    )
    prep.add_argument(
        "--on-leak",
        choices=("report", "drop", "fail"),
        default="report",
        help="a test row whose prompt_id is in the paired train split (default: %(default)s)",
    )
    prep.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) to load")
    prep.add_argument("--batch-size", type=int, default=1000, help="Arrow batch size (default: %(default)s)")
    prep.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    prep.add_argument("--no-fast", dest="fast", action="store_false", help=argparse.SUPPRESS)  # per-row path only

    sample = sub.add_parser("sample", help="write the bundled synthetic hub-layout sample (deterministic)")
    sample.add_argument("--out", default="data/hub-sample", help="output folder (default: %(default)s)")
    sample.add_argument("--seed", default="0", help="generator seed (default: %(default)s)")
    parser.set_defaults(_data_parser=parser)


_STOP = threading.Event()


def _request_stop(signum: int, frame: Any) -> None:
    """SIGTERM / Ctrl-C: stop at the next batch boundary (interrupting a library reader mid-call can hang its
    threads); a second signal interrupts at once."""
    if _STOP.is_set():
        raise KeyboardInterrupt
    _STOP.set()


def run(args: argparse.Namespace) -> int:
    if args.data_command is None:
        args._data_parser.print_help()
        return 2
    if args.data_command == "sample":
        from tools.data.sample import write_hub_sample

        write_hub_sample(Path(args.out), seed=parse_seed(args.seed))
        print(f"wrote {display_path(args.out)}")
        return 0
    if args.test_size is None and args.split is not None:
        args.test_size = "0.2"
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    in_main = threading.current_thread() is threading.main_thread()
    _STOP.clear()
    if in_main:  # both unwind like Ctrl-C at a batch boundary, so the atomic writers remove their temp files
        for signum in signals:
            signal.signal(signum, _request_stop)
    try:
        with _without_torch():
            return prepare(args)
    finally:
        if in_main:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
