"""Where rows come from: resolving ``--source`` (hub id, hub-layout folder, JSONL/parquet files), opening it, and
reading each split in bounded batches.

Parquet and hub sources stream through the real ``datasets.load_dataset(..., streaming=True)`` as Arrow tables.
JSON Lines files (given directly or named by a hub-layout README) are read here, line by line, because
``datasets``' JSON builder fails a whole block for one bad line, names no line, and types a column as JSON text when
one row differs from the others. Here every line is one row on its own: invalid UTF-8, a line that is not JSON
(e.g. a truncated last line), or a JSON value that is not an object is that row's problem, with its 1-based line;
so is a number no row can hold (an integer past Python's int-string limit, which ``json`` raises ValueError on after
parsing; ``NaN``/``Infinity``, which are not JSON; a float past the float range, which would be written back as
``Infinity``). A local dataset card whose YAML front matter cannot be read is one line naming the card (exit 2).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import math
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tools.core.errors import UserError
from tools.core.offline import GO_ONLINE_HINT, hub_offline
from tools.core.yamlio import YamlProblem, load_lined
from tools.data.rows import RowDefect

HUB_PROBE_TIMEOUT_S = 3.0
MAX_LINE_BYTES = 16 * 1024 * 1024  # one JSONL row (ultrachat rows are ~7 KB); a longer line is a bad row

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHARD_RE = re.compile(r"-\d{5}-of-\d{5}.*$")
DATA_EXTENSIONS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def display_path(path: str | Path) -> str:
    """Paths in messages and the manifest: relative to the working directory when inside it."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


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
    """Decide how ``--source`` is read (raises UserError for paths that do not exist)."""
    try:
        path = Path(text).expanduser()
        is_dir, is_file = path.is_dir(), path.is_file()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise UserError(f"--source {text[:200]}: cannot use this path: {first_line(exc)}") from None
    if is_dir:
        readme = path / "README.md"
        has_configs = readme.is_file() and "configs:" in readme.read_text(encoding="utf-8", errors="replace")
        if has_configs or (path / "data").is_dir():
            return Source(text, "hub-layout", str(path))
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in DATA_EXTENSIONS)
        if not files:
            raise UserError(f"--source {text}: folder has no README.md with configs:, no data/ and no .jsonl/.parquet")
        return _files_source(text, files)
    if is_file:
        if path.suffix not in DATA_EXTENSIONS:
            raise UserError(f"--source {text}: not a .jsonl, .json or .parquet file")
        return _files_source(text, [path])
    if _HUB_ID_RE.match(text) and not text.startswith("."):
        return Source(text, "hub", text)
    raise UserError(f"--source {text}: no such file or folder (and not a Hugging Face dataset id)")


def _files_source(text: str, files: list[Path]) -> Source:
    builders = {DATA_EXTENSIONS[p.suffix] for p in files}
    if len(builders) > 1:
        raise UserError(f"--source {text}: mixes JSON and parquet files; keep one format per source")
    data_files: dict[str, list[str]] = {}
    for file in files:
        data_files.setdefault(_split_of_file(file), []).append(str(file))
    builder = builders.pop()
    return Source(text, builder, builder, {"data_files": data_files})


# ----------------------------------------------------------------------------------------------------------------
# JSON Lines, read here


@dataclass
class RowBatch:
    """Rows of one JSON Lines file: each parsed value (None where ``problems`` has the row) and its 1-based line."""

    file: str
    values: list[Any]
    lines: list[int]
    problems: dict[int, RowDefect] = field(default_factory=dict)  # batch index -> read problem

    @property
    def num_rows(self) -> int:
        return len(self.values)

    def take(self, indices: Any) -> RowBatch:
        chosen = [int(i) for i in indices]
        problems = {new: self.problems[old] for new, old in enumerate(chosen) if old in self.problems}
        return RowBatch(self.file, [self.values[i] for i in chosen], [self.lines[i] for i in chosen], problems)


class _BadNumber(ValueError):
    """A JSON number no row can hold (raised from the decoder's number hooks, so the row is named, not the run)."""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # past sys.get_int_max_str_digits(): json.loads would raise this after parsing
        digits = len(text.lstrip("-"))
        raise _BadNumber(
            f"an integer of {digits} digits (Python reads at most {sys.get_int_max_str_digits()})"
        ) from None


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _BadNumber(f"{text[:40]} is past the range of a float (it would be written back as Infinity)")
    return value


def _constant(name: str) -> float:
    raise _BadNumber(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)
_LENIENT = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)  # finds where a bad item ends


def _parse_line(raw: bytes) -> tuple[Any, RowDefect | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, ("invalid-utf8", f"byte 0x{raw[error.start]:02x} at column {error.start + 1} is not UTF-8")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        return None, ("unparseable-line", f"not JSON: {error.msg} at column {error.colno}")
    except _BadNumber as error:
        return None, ("unparseable-line", f"not JSON a row can hold: {error}")
    except RecursionError:
        return None, ("unparseable-line", "not JSON a row can hold: nested too deeply")
    if not isinstance(value, dict):
        return None, ("not-an-object", f"the line is a JSON {type(value).__name__}, not an object")
    return value, None


def _lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of every non-blank line; bytes None for a line over MAX_LINE_BYTES (skipped unread)."""
    with path.open("rb") as handle:
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if number == 1 and raw.startswith(codecs.BOM_UTF8):  # written by some Windows tools; not data
                raw = raw[len(codecs.BOM_UTF8) :]
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass
                yield number, None
            elif raw.strip():
                yield number, raw


def _json_array(path: Path, shown: str) -> Iterator[tuple[int, Any, RowDefect | None]]:
    """Items of a ``.json`` file holding one JSON array, each with the line it starts on."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{shown}: byte {error.start} is not UTF-8 (a JSON array file is read whole)") from None
    index, line = text.index("[") + 1, 1
    counted = 0
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            return
        line += text.count("\n", counted, index)
        counted = index
        try:
            try:
                value, index = _DECODER.raw_decode(text, index)
            except _BadNumber as error:  # the item is JSON: skip past it and report it as that row's problem
                _, index = _LENIENT.raw_decode(text, index)
                yield line, None, ("unparseable-line", f"not JSON a row can hold: {error}")
                continue
        except (json.JSONDecodeError, RecursionError) as error:
            raise UserError(f"{shown}:{line}: not a JSON array of rows: {error}") from None
        yield line, value, None if isinstance(value, dict) else ("not-an-object", "the item is not a JSON object")


def _is_array(path: Path) -> bool:
    if path.suffix != ".json":
        return False
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    return head.startswith(b"[")


@dataclass
class JsonFiles:
    """One split held in JSON Lines (or JSON array) files, read in order."""

    files: list[Path]
    info: Any = None  # no dataset card: the length is counted

    def count(self) -> int:
        return sum(sum(1 for _ in self._rows(path)) for path in self.files)

    def _rows(self, path: Path) -> Iterator[tuple[int, Any, RowDefect | None]]:
        if _is_array(path):
            yield from _json_array(path, display_path(path))
            return
        for number, raw in _lines(path):
            if raw is None:
                yield number, None, ("unparseable-line", f"the line is longer than {MAX_LINE_BYTES} bytes")
            else:
                yield number, *_parse_line(raw)

    def batches(self, batch_size: int) -> Iterator[RowBatch]:
        for path in self.files:
            batch = RowBatch(display_path(path), [], [])
            for number, value, problem in self._rows(path):
                if problem is not None:
                    batch.problems[len(batch.values)] = problem
                batch.values.append(value)
                batch.lines.append(number)
                if len(batch.values) >= batch_size:
                    yield batch
                    batch = RowBatch(batch.file, [], [])
            if batch.values:
                yield batch


def _json_splits(source: Source, data_files: dict[str, list[str]]) -> dict[str, JsonFiles]:
    splits = {}
    for split, names in data_files.items():
        paths = [Path(name) for name in names]
        for path in paths:
            try:
                empty = not any(True for _ in _lines(path)) if not _is_array(path) else False
            except OSError as exc:
                raise UserError(f"--source {source.display}: {display_path(path)}: {first_line(exc)}") from None
            if empty:
                raise UserError(f"--source {source.display}: {display_path(path)}: empty file (no JSON lines)")
        splits[split] = JsonFiles(paths)
    return splits


# ----------------------------------------------------------------------------------------------------------------
# Opening: datasets for parquet and the hub


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
    return hub_offline()


def _unreachable(source: Source, why: str) -> UserError:
    return UserError(
        f"--source {source.text}: the Hugging Face Hub cannot be reached ({why}) and no local path has that name; "
        "pass --source with a local hub-layout folder or JSONL/parquet files"
    )


def _layout_json_files(source: Source) -> dict[str, list[str]] | None:
    """The JSON data files a local hub-layout folder's README names per split (None: not a JSON dataset)."""
    import datasets
    from datasets.packaged_modules.json.json import Json

    builder = datasets.load_dataset_builder(source.path)
    if not isinstance(builder, Json) or not builder.config.data_files:
        return None
    files = {split: [str(name) for name in names] for split, names in builder.config.data_files.items()}
    return files if all(Path(name).is_file() for names in files.values() for name in names) else None


def check_card(source: Source) -> None:
    """A local folder's dataset card (README.md) must have YAML front matter that can be read: ``datasets`` reads it
    with PyYAML and its syntax and construction errors (``!!int mit``, ``2024-13-45``) would surface as a multi-line
    internal error. Raises one UserError naming ``--source``, the card and the line (exit 2)."""
    import yaml


    card = Path(source.path) / "README.md"
    try:
        text = card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if card.is_file():
            raise UserError(f"--source {source.text}: {display_path(card)}: cannot read the dataset card: "
                            f"{first_line(exc)}") from None  # fmt: skip
        return
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:  # no closing line: no front matter to read (as datasets sees it)
        return
    front = "\n".join(lines[1:end]) + "\n"
    shown = f"--source {source.text}: {display_path(card)}"
    try:
        yaml.load(front, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
        return
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, what = (mark.line + 2 if mark else 1), error.problem or error.context or "malformed YAML"
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
        line, what = 1, first_line(error)
        try:
            load_lined(front)  # the same text through the repo's reader: names the line and key it cannot build
        except YamlProblem as problem:
            key = ".".join(str(part) for part in problem.key_path)
            line, what = problem.line + 1, f"{key}: {problem.message}" if key else problem.message
    raise UserError(f"{shown}:{line}: the dataset card's YAML front matter cannot be read: {what}")


def open_source(source: Source, revision: str | None) -> Any:
    """``{split: dataset}``: ``load_dataset(..., streaming=True)`` or :class:`JsonFiles`; a one-line UserError."""
    if source.kind == "hub-layout":
        check_card(source)
    if source.kind == "json":
        return _json_splits(source, source.kwargs["data_files"])
    if source.kind == "hub" and not _offline_enabled() and not _hub_reachable():
        raise _unreachable(source, f"no connection within {HUB_PROBE_TIMEOUT_S:.0f} s")
    import datasets
    import yaml
    from datasets.exceptions import DatasetsError

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    kwargs = dict(source.kwargs)
    if revision and source.kind == "hub":
        kwargs["revision"] = revision
    # pyarrow pre-buffers every row group of a file it scans and keeps the buffers until the file is done:
    # RSS grew by the compressed file size (~0.75 GB for train_gen). Read row group by row group instead.
    import pyarrow.dataset as pds

    kwargs["fragment_scan_options"] = pds.ParquetFragmentScanOptions(pre_buffer=False)
    try:
        if source.kind == "hub-layout" and (json_files := _layout_json_files(source)) is not None:
            return _json_splits(source, json_files)
        try:
            return datasets.load_dataset(source.path, streaming=True, **kwargs)
        except ValueError as exc:
            if "fragment_scan_options" not in str(exc):
                raise
            kwargs.pop("fragment_scan_options")  # not a parquet builder
            return datasets.load_dataset(source.path, streaming=True, **kwargs)
    except ConnectionError as exc:
        if source.kind == "hub":
            why = f"offline mode is on: {GO_ONLINE_HINT}" if _offline_enabled() else "connection failed"
            raise _unreachable(source, why) from None
        raise UserError(f"--source {source.text}: {first_line(exc)}") from None
    except (DatasetsError, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        raise UserError(f"--source {source.text}: cannot load: {first_line(exc)}") from None


# ----------------------------------------------------------------------------------------------------------------
# Reading batches


def iter_batches(dataset: Any, batch_size: int, source: Source, split: str) -> Iterator[Any]:
    """Arrow tables (datasets) or :class:`RowBatch` (JSON files) of up to ``batch_size`` rows, in source order."""
    if isinstance(dataset, JsonFiles):
        try:
            yield from dataset.batches(batch_size)
        except OSError as exc:
            raise UserError(f"--source {source.display}: split {split}: cannot read rows: {first_line(exc)}") from None
        return
    yield from iter_tables(dataset, batch_size, source, split)


def iter_tables(dataset: Any, batch_size: int, source: Source, split: str) -> Iterator[Any]:
    import pyarrow as pa
    from datasets.exceptions import DatasetsError

    def failed(exc: BaseException) -> UserError:
        return UserError(f"--source {source.display}: split {split}: cannot read rows: {first_line(exc)}")

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


def count_rows(dataset: Any, batch_size: int, source: Source, split: str, stop: threading.Event) -> int:
    """A first pass for splits whose length the dataset card does not declare."""
    if isinstance(dataset, JsonFiles):
        return dataset.count()
    rows = 0
    with contextlib.closing(iter_tables(dataset, batch_size, source, split)) as tables:
        for table in tables:
            if stop.is_set():
                raise KeyboardInterrupt
            rows += table.num_rows
    return rows


def split_length(dataset: Any, split: str) -> int | None:
    splits = getattr(dataset.info, "splits", None) or {}
    info = splits.get(split) if hasattr(splits, "get") else None
    value = getattr(info, "num_examples", None)
    return int(value) if value else None


@contextlib.contextmanager
def without_torch() -> Iterator[None]:
    """``datasets`` imports torch (~4 s, ~300 MB) for every IterableDataset when torch is installed, only to share
    an epoch counter with DataLoader workers. We never use torch here: hide it for the duration, then restore."""
    import datasets.config

    saved = datasets.config.TORCH_AVAILABLE
    datasets.config.TORCH_AVAILABLE = False
    try:
        yield
    finally:
        datasets.config.TORCH_AVAILABLE = saved
