"""Hostile rows: each costs its own row (counted, named by file line or row index), never the file or the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ARGS = ("--splits", "train_sft", "--percent", "100", "--no-progress")


def _lines(kit, n: int = 4) -> list[bytes]:  # noqa: ANN001
    return [json.dumps(kit.row(f"g{i}")).encode() for i in range(n)]


def _prepare(cli, folder: Path, out: Path, *extra: str):  # noqa: ANN001, ANN202
    return cli("prepare", "--source", str(folder), *ARGS, "--out", str(out), *extra)


def _issues(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "issues.jsonl").read_text().splitlines()]


def _write(folder: Path, lines: list[bytes], name: str = "train_sft.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\n".join(lines) + b"\n")
    return folder


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"prompt": "q", "prompt_id": "x", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}',
         "empty-content"),
        (b'{"prompt": "caf\xe9", "prompt_id": "x", "messages": []}', "invalid-utf8"),
        (b'{"prompt": "q", "prompt_id": "x", "messa', "unparseable-line"),
        (b"[1, 2, 3]", "not-an-object"),
        (b"[" * 100_000, "unparseable-line"),
        (b'{"prompt_id": "x", "messages": ' + b"[" * 50 + b"]" * 50 + b"}", "bad-message"),
        (b'{"prompt_id": "x", "n": ' + b"9" * 5000 + b', "messages": []}', "unparseable-line"),
        (b'{"prompt_id": ' + b"-" + b"1" * 4301 + b', "messages": []}', "unparseable-line"),
        (b'{"prompt_id": "x", "w": NaN, "messages": []}', "unparseable-line"),
        (b'{"prompt_id": "x", "w": -Infinity, "messages": []}', "unparseable-line"),
        (b'{"prompt_id": "x", "w": 1e999, "messages": []}', "unparseable-line"),
    ],
    ids=["message-without-content", "invalid-utf8", "unparseable", "not-an-object", "json-bomb", "deep-json",
         "5000-digit-int", "huge-prompt-id", "nan", "infinity", "float-overflow"],
)
def test_a_bad_line_costs_its_row_with_its_file_line(bad: bytes, reason: str, tmp_path: Path, kit, cli) -> None:
    good = _lines(kit)
    # a blank line first: line numbers are the file's lines, not row ordinals
    folder = _write(tmp_path / "src", [good[0], b"", good[1], bad, good[2], good[3]])
    out = tmp_path / "out"
    result = _prepare(cli, folder, out)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert [r["prompt_id"] for r in kit.read_jsonl(out / "train_sft.jsonl")] == [
        json.loads(line)["prompt_id"] for line in good
    ]
    (issue,) = _issues(out)
    assert (issue["row"], issue["reason"], issue["file"]) == (4, reason, f"{folder}/train_sft.jsonl")
    entry = json.loads((out / "manifest.json").read_text())["outputs"]["train_sft"]
    assert (entry["selected"], entry["written"], entry["skipped"]) == (5, 4, {reason: 1})
    assert f"src/train_sft.jsonl:4: {reason}" in result.err


def test_truncated_last_line_is_a_bad_row_under_skip_and_named_under_fail(tmp_path: Path, kit, cli) -> None:
    good = _lines(kit)
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "train_sft.jsonl").write_bytes(b"\n".join(good) + b"\n" + good[0][:25])  # no newline at the end
    result = _prepare(cli, folder, tmp_path / "skip")
    assert result.code == 0, result.err
    assert len(kit.read_jsonl(tmp_path / "skip" / "train_sft.jsonl")) == 4
    assert [(i["row"], i["reason"]) for i in _issues(tmp_path / "skip")] == [(5, "unparseable-line")]
    result = _prepare(cli, folder, tmp_path / "fail", "--on-bad-row", "fail")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "train_sft.jsonl:5: unparseable-line: not JSON" in result.err
    assert not (tmp_path / "fail" / "train_sft.jsonl").exists()


def test_a_line_over_the_cap_is_a_bad_row_and_is_not_read_whole(tmp_path: Path, kit, cli, monkeypatch) -> None:
    from tools.data import sources

    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 4096)
    good = _lines(kit, 2)
    huge = b'{"prompt": "' + b"x" * 50_000 + b'"}'
    folder = _write(tmp_path / "src", [good[0], huge, good[1]])
    result = _prepare(cli, folder, tmp_path / "out")
    assert result.code == 0, result.err
    assert len(kit.read_jsonl(tmp_path / "out" / "train_sft.jsonl")) == 2
    assert [(i["row"], i["reason"]) for i in _issues(tmp_path / "out")] == [(2, "unparseable-line")]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["zero-bytes", "blank-lines"])
def test_an_empty_input_is_one_clear_line(content: bytes, tmp_path: Path, cli) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "train_sft.jsonl").write_bytes(content)
    result = _prepare(cli, folder, tmp_path / "out")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "train_sft.jsonl: empty file" in result.err


def test_lone_surrogates_in_json_are_kept_not_a_crash(tmp_path: Path, kit, cli) -> None:
    row = kit.row("s")
    row["prompt_id"] = "id-\ud800"
    folder = _write(tmp_path / "src", [json.dumps(row).encode(), *_lines(kit, 2)])
    result = _prepare(cli, folder, tmp_path / "out")
    assert result.code == 0, result.err
    assert len((tmp_path / "out" / "train_sft.jsonl").read_bytes().splitlines()) == 3


def test_hub_layout_jsonl_is_read_line_by_line(tmp_path: Path, kit, cli) -> None:
    folder = tmp_path / "hub"
    (folder / "data").mkdir(parents=True)
    good = _lines(kit, 3)
    (folder / "data" / "train_sft-00000-of-00001.jsonl").write_bytes(b"\n".join([good[0], b"{oops", *good[1:]]))
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train_sft\n    path: data/train_sft-*\n---\n"
    )
    result = _prepare(cli, folder, tmp_path / "out")
    assert result.code == 0, result.err
    assert len(kit.read_jsonl(tmp_path / "out" / "train_sft.jsonl")) == 3
    assert [(i["row"], i["reason"]) for i in _issues(tmp_path / "out")] == [(2, "unparseable-line")]


def test_json_array_file_rows_keep_their_lines(tmp_path: Path, kit, cli) -> None:
    rows = [kit.row("a0"), "not an object", kit.row("a1")]
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "train_sft.json").write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    result = _prepare(cli, folder, tmp_path / "out")
    assert result.code == 0, result.err
    assert len(kit.read_jsonl(tmp_path / "out" / "train_sft.jsonl")) == 2
    assert [(i["row"], i["reason"]) for i in _issues(tmp_path / "out")] == [(3, "not-an-object")]


def _parquet_with_invalid_utf8(folder: Path, kit, bad_row: int) -> Path:  # noqa: ANN001
    """A parquet file whose row ``bad_row`` has a message content that is not UTF-8 (pyarrow does not check)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([kit.row(f"p{i}") for i in range(6)])
    messages = table.column("messages").combine_chunks()
    flat = messages.flatten()
    first = messages.offsets[bad_row].as_py()
    raw = [c.encode() if i != first else b"caf\xe9" for i, c in enumerate(flat.field("content").to_pylist())]
    content = pa.array(raw, pa.binary()).view(pa.string())
    items = pa.StructArray.from_arrays([content, flat.field("role")], names=["content", "role"])
    table = table.set_column(2, "messages", pa.ListArray.from_arrays(messages.offsets, items))
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "train_sft.parquet")
    return folder


@pytest.mark.parametrize("fast", [True, False], ids=["arrow-path", "row-path"])
def test_invalid_utf8_in_parquet_is_a_bad_row_on_both_paths(fast: bool, tmp_path: Path, kit, cli) -> None:
    folder = _parquet_with_invalid_utf8(tmp_path / "pq", kit, bad_row=2)
    out = tmp_path / "out"
    result = _prepare(cli, folder, out, *([] if fast else ["--no-fast"]))
    assert result.code == 0, result.err
    data = (out / "train_sft.jsonl").read_bytes()
    data.decode("utf-8")  # the checked output is UTF-8
    assert len(data.splitlines()) == 5
    assert [(i["row"], i["reason"]) for i in _issues(out)] == [(2, "invalid-utf8")]  # a 0-based row index


def test_json_typed_columns_are_decoded_at_every_level(tmp_path: Path, kit) -> None:
    """``datasets`` types ``messages`` as list<json> when one message differs; each item is decoded on its own."""
    import datasets

    from tools.data.pipeline import column_values

    good, odd = kit.row("j0"), kit.row("j1")
    odd["messages"][1] = {"role": "assistant"}
    path = tmp_path / "mixed.jsonl"
    kit.write_jsonl(path, [good, odd])
    stream = datasets.load_dataset("json", data_files={"train": [str(path)]}, streaming=True)["train"]
    table = next(iter(stream.with_format("arrow").iter(batch_size=10)))
    assert "json" in str(table.schema.field("messages").type)  # the case this test is about
    assert column_values(table, "messages") == [good["messages"], odd["messages"]]


def test_a_json_array_item_with_a_huge_number_costs_its_row_only(tmp_path: Path, kit, cli) -> None:
    bad = '{"prompt_id": "x", "n": ' + "9" * 5000 + ', "messages": [{"role": "user", "content": "hi"}]}'
    folder = tmp_path / "src"
    folder.mkdir()
    good = [kit.row("a0"), kit.row("a1")]
    items = [json.dumps(good[0]), bad, json.dumps(good[1])]
    (folder / "train_sft.json").write_text("[\n" + ",\n".join(items) + "\n]\n")
    result = _prepare(cli, folder, tmp_path / "out")
    assert result.code == 0, result.err
    written = [r["prompt_id"] for r in kit.read_jsonl(tmp_path / "out" / "train_sft.jsonl")]
    assert written == [row["prompt_id"] for row in good]
    (issue,) = _issues(tmp_path / "out")
    assert (issue["row"], issue["reason"]) == (3, "unparseable-line") and "5000 digits" in issue["detail"]


@pytest.mark.parametrize(
    ("first", "line", "words"),
    [
        ("license: [mit", 3, "did not find expected"),
        ("license: !!int mit", 2, "license: 'mit' cannot be read as !!int"),
        ("license: 2024-13-45", 2, "not a valid one"),
        ("license: !!bool maybe", 2, "cannot be read as !!bool"),
        ("license: !!python/object:os.system {}", 2, "could not determine a constructor"),
    ],
    ids=["syntax", "bad-int-tag", "bad-date", "bad-bool-tag", "unknown-tag"],
)
def test_a_dataset_card_that_cannot_be_read_is_one_line_naming_source_and_card(
    first: str, line: int, words: str, tmp_path: Path, kit, cli
) -> None:
    folder = tmp_path / "hub"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train_sft-00000-of-00001.jsonl").write_bytes(b"\n".join(_lines(kit, 2)) + b"\n")
    (folder / "README.md").write_text(
        f"---\n{first}\nconfigs:\n- config_name: default\n  data_files:\n  - split: train_sft\n"
        "    path: data/train_sft-*\n---\n# card\n"
    )
    result = _prepare(cli, folder, tmp_path / "out")
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    assert f"--source {folder}: " in result.err and f"README.md:{line}: " in result.err, result.err
    assert words in result.err, result.err
