"""Bad input to fine_tune.py: exit status 2 and exactly one line naming the file/row/option, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _assert_one_line(result, *fragments: str) -> None:  # noqa: ANN001
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("fine_tune.py: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not result.output_dir.exists() or not any(result.output_dir.iterdir())


def _bad_files(root: Path, chat_row) -> dict[str, tuple[Path, tuple[str, ...]]]:  # noqa: ANN001
    good = [json.dumps(chat_row(i)) for i in range(3)]
    cases: dict[str, tuple[str, tuple[str, ...]]] = {
        "empty": ("\n\n", ("no rows", "expected JSONL")),
        "malformed-json": (good[0] + "\n{not json\n", (":2:", "not valid JSON")),
        "no-messages": (good[0] + "\n" + good[1] + '\n{"prompt": "x"}\n', (":3:", "messages: expected a non-empty")),
        "bad-role": (json.dumps({"messages": [{"role": "bot", "content": "x"}]}) + "\n", (":1:", "messages[0].role")),
        "content-not-string": (
            json.dumps({"messages": [{"role": "user", "content": 1}, {"role": "assistant", "content": "y"}]}),
            (":1:", "messages[0].content: expected a string"),
        ),
        "no-assistant": (json.dumps({"messages": [{"role": "user", "content": "x"}]}), ("at least one assistant",)),
        "not-an-object": ("[1, 2]\n", (":1:", "expected a JSON object")),
    }
    out = {}
    for name, (text, fragments) in cases.items():
        path = root / f"{name}.jsonl"
        path.write_text(text, encoding="utf-8")
        out[name] = (path, fragments)
    return out


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, chat_row) -> dict[str, tuple[Path, tuple[str, ...]]]:  # noqa: ANN001
    return _bad_files(tmp_path_factory.mktemp("bad-data"), chat_row)


CASES = ["empty", "malformed-json", "no-messages", "bad-role", "content-not-string", "no-assistant", "not-an-object"]


@pytest.mark.parametrize("case", CASES)
def test_bad_training_data(case: str, bad_files, run_fine_tune, tiny_model: Path) -> None:  # noqa: ANN001
    path, fragments = bad_files[case]
    result = run_fine_tune("--train-file", str(path), "--model-name-or-path", str(tiny_model))
    _assert_one_line(result, "--train-file" if case == "empty" else str(path), *fragments)


def test_bad_eval_file_is_named(bad_files, run_fine_tune, tiny_model: Path, chat_data) -> None:  # noqa: ANN001
    path, _ = bad_files["malformed-json"]
    result = run_fine_tune("--train-file", str(chat_data["train"]), "--eval-file", str(path),
                           "--model-name-or-path", str(tiny_model))  # fmt: skip
    _assert_one_line(result, f"{path}:2:")


def test_missing_files(run_fine_tune, tiny_model: Path, chat_data, tmp_path: Path) -> None:  # noqa: ANN001
    missing = tmp_path / "nope.jsonl"
    result = run_fine_tune("--train-file", str(missing), "--model-name-or-path", str(tiny_model))
    _assert_one_line(result, f"--train-file {missing}: no such file")
    result = run_fine_tune("--train-file", str(chat_data["train"]), "--eval-file", str(missing),
                           "--model-name-or-path", str(tiny_model))  # fmt: skip
    _assert_one_line(result, "--eval-file", "no such file")


def test_unknown_model(call_main, chat_data, tmp_path: Path) -> None:  # noqa: ANN001
    local = tmp_path / "no-model-here"
    result = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", str(local))
    _assert_one_line(result, f"--model-name-or-path {local}: no such folder")
    empty = tmp_path / "empty-model"
    empty.mkdir()
    result = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", str(empty))
    _assert_one_line(result, "expected a model folder with config.json")
    # A hub id while offline (HF_HUB_OFFLINE=1 from the test session): one line, not a retry storm.
    result = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", "nobody/no-such-model")
    _assert_one_line(result, "--model-name-or-path nobody/no-such-model: cannot load")


def test_max_length_too_small(call_main, tiny_model: Path, chat_data) -> None:  # noqa: ANN001
    result = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model),
                           "--max-length", "4")  # fmt: skip
    _assert_one_line(result, "--max-length 4: shorter than every example", "expected at least")


def test_unknown_lora_target(call_main, tiny_model: Path, chat_data) -> None:  # noqa: ANN001
    result = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model),
                           "--lora", "--lora-target-modules", "q_proj,v_proj")  # fmt: skip
    _assert_one_line(result, "--lora-target-modules: q_proj, v_proj not in the model", "qkv_proj")


def test_output_dir_not_empty(run_fine_tune, tiny_model: Path, chat_data, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_fine_tune("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model),
                           output_dir=out)  # fmt: skip
    assert result.returncode == 2 and "--output-dir" in result.stderr and "not empty" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--learning-rate", "-1"], "--learning-rate: expected a number > 0"),
        (["--lr-scheduler", "warmup_stable"], "--lr-scheduler: invalid choice"),
        (["--max-steps", "0"], "--max-steps 0"),
        (["--per-device-train-batch-size", "0"], "expected an integer >= 1"),
        (["--lora-dropout", "1.5"], "--lora-dropout"),
        (["--precision", "fp8"], "--precision: invalid choice"),
    ],
)
def test_bad_options(args: list[str], fragment: str, run_fine_tune, tiny_model: Path, chat_data) -> None:  # noqa: ANN001
    result = run_fine_tune("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model), *args)
    _assert_one_line(result, fragment)


def test_data_folder_input(run_fine_tune, tiny_model: Path, tmp_path: Path, chat_row) -> None:  # noqa: ANN001
    """Azure ML may mount a uri_folder: every *.jsonl inside is read, and a bad row is named by file and line."""
    folder = tmp_path / "train-folder"
    folder.mkdir()
    (folder / "a.jsonl").write_text(json.dumps(chat_row(0)) + "\n")
    (folder / "b.jsonl").write_text(json.dumps(chat_row(1)) + "\n" + '{"messages": []}\n')
    result = run_fine_tune("--train-file", str(folder), "--model-name-or-path", str(tiny_model))
    _assert_one_line(result, f"{folder / 'b.jsonl'}:2:", "messages")
