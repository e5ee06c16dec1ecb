"""Small local datasets written by the tests: hub-layout parquet folders and JSONL files, plus an in-process CLI."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def row(key: str, exchanges: int = 2, system: bool = False) -> dict[str, Any]:
    """A good ultrachat-shaped row; ``key`` makes prompt and prompt_id unique."""
    prompt = f'Question {key}: how do I keep "notes" tidy?\tThanks\\n'
    messages: list[dict[str, Any]] = [{"content": "Be concise.", "role": "system"}] if system else []
    for turn in range(exchanges):
        messages.append({"content": prompt if turn == 0 else f"follow-up {turn} for {key}", "role": "user"})
        messages.append(
            {"content": f"Answer {turn} for {key}.\nUse folders, \u00e9tiquettes and dates.", "role": "assistant"}
        )
    return {"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(), "messages": messages}


def write_hub(folder: Path, splits: dict[str, list[dict[str, Any]]], row_group_size: int = 50) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tools.data.sample import hub_readme

    schema = pa.schema(
        [
            ("prompt", pa.string()),
            ("prompt_id", pa.string()),
            ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ]
    )
    nbytes = {}
    for split, rows in splits.items():
        table = pa.Table.from_pylist(rows, schema=schema)
        nbytes[split] = table.nbytes
        (folder / "data").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "data" / f"{split}-00000-of-00001.parquet", row_group_size=row_group_size)
    (folder / "README.md").write_text(hub_readme({s: len(r) for s, r in splits.items()}, nbytes))
    return folder


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``python -m tools data ...`` in-process (one datasets import for the whole session)."""
    from tools.__main__ import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        if args and args[0] == "prepare" and "--gate-size" not in args:
            args = (*args, "--gate-size", "0")  # the two-output layout these tests check (test_gate.py: the gate)
        code = main(["data", *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


class Kit:
    """The helpers above, handed to tests as one fixture (test modules cannot import this conftest)."""

    row = staticmethod(row)
    write_hub = staticmethod(write_hub)
    write_jsonl = staticmethod(write_jsonl)
    read_jsonl = staticmethod(read_jsonl)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
