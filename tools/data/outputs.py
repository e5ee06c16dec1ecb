"""The files ``data prepare`` writes while it streams: one :class:`Output` per JSONL file (written atomically on a
writer thread, hashed and counted as it goes) and :class:`BadRowLog`, every skipped or leaked row (a sidecar JSONL, the
first few on stderr)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tools.core.files import atomic_writer
from tools.data.rows import SeenIds

ISSUES = "issues.jsonl"
STDERR_ISSUE_LINES = 20
WRITER_QUEUE = 4  # batches in flight per output file


def where(row: int, file: str | None) -> str:
    """How a message names a row: ``row 17`` (an index) or ``FILE:LINE`` (JSON Lines)."""
    return f"row {row}" if file is None else f"{file}:{row}"


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


class BadRowLog:
    """Every skipped or leaked row: full list to a sidecar JSONL, the first few to stderr, counted."""

    def __init__(self, out_dir: Path) -> None:
        self.count = 0
        self.shown: list[str] = []
        self._spool = tempfile.TemporaryFile(dir=out_dir)  # noqa: SIM115 - closed in finish()

    def add(
        self, split: str, row: int, reason: str, detail: str, prompt_id: Any, action: str, file: str | None = None
    ) -> None:
        """``row``: the 0-based row index (parquet, hub), or the 1-based line of ``file`` (JSON Lines)."""
        self.count += 1
        record = {
            "split": split,
            "row": row,
            **({"file": file} if file is not None else {}),
            "reason": reason,
            "detail": detail,
            "prompt_id": prompt_id,
            "action": action,
        }
        text = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        self._spool.write(text.encode("utf-8", "backslashreplace"))
        if len(self.shown) < STDERR_ISSUE_LINES:
            self.shown.append(f"{action} {split} {where(row, file)}: {reason}: {detail}")

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
