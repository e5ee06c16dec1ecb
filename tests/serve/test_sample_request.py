"""`score sample-request`: the foundation-model body from test conversations, deterministic per seed, atomic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.core.errors import UserError
from tools.serve.score import build_sample_request, generation_parameters, read_conversations, write_request

from .conftest import REPO_ROOT


def _row(i: int, turns: int = 2) -> dict:
    messages = []
    for t in range(turns):
        messages += [{"role": "user", "content": f"q{i}.{t}"}, {"role": "assistant", "content": f"a{i}.{t}"}]
    return {"prompt": f"q{i}.0", "prompt_id": str(i), "messages": messages}


@pytest.fixture()
def test_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "test_sft.jsonl"
    path.write_text("".join(json.dumps(_row(i, 1 + i % 3)) + "\n" for i in range(20)), encoding="utf-8")
    return path


def test_shape_and_cut_after_last_user_turn(test_jsonl: Path) -> None:
    body = build_sample_request(test_jsonl, n=1, seed=3)
    assert set(body) == {"input_data", "params"} and body["params"] == {}
    assert body["input_data"]["parameters"] == {
        "temperature": 0.6, "top_p": 0.9, "do_sample": True, "max_new_tokens": 200,
    }  # fmt: skip
    (conversation,) = body["input_data"]["input_string"]
    assert conversation[-1]["role"] == "user"
    rows = [json.loads(line) for line in test_jsonl.read_text().splitlines()]
    source = next(r["messages"] for r in rows if r["messages"][: len(conversation)] == conversation)
    assert source[len(conversation)]["role"] == "assistant"  # only the final answer was cut
    assert all(set(m) == {"role", "content"} for m in conversation)


def test_same_seed_same_bytes_other_seed_other_rows(test_jsonl: Path, tmp_path: Path) -> None:
    first = write_request(build_sample_request(test_jsonl, n=3, seed=7), tmp_path / "a.json").read_bytes()
    again = write_request(build_sample_request(test_jsonl, n=3, seed=7), tmp_path / "b.json").read_bytes()
    other = write_request(build_sample_request(test_jsonl, n=3, seed=8), tmp_path / "c.json").read_bytes()
    assert first == again and first != other
    assert len(json.loads(first)["input_data"]["input_string"]) == 3


def test_parameters_come_from_the_caller(test_jsonl: Path) -> None:
    params = generation_parameters(temperature=0.0, top_p=1.0, do_sample=False, max_new_tokens=16)
    body = build_sample_request(test_jsonl, parameters=params)
    assert body["input_data"]["parameters"] == params == {
        "temperature": 0.0, "top_p": 1.0, "do_sample": False, "max_new_tokens": 16,
    }  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, message",
    [({"temperature": 3.0}, "temperature"), ({"top_p": 0.0}, "top_p"), ({"max_new_tokens": 0}, "max_new_tokens")],
)
def test_out_of_range_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        generation_parameters(**kwargs)


def test_bad_input_names_file_and_line(tmp_path: Path, test_jsonl: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(_row(0)) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"broken\.jsonl:2: not valid JSON"):
        read_conversations(broken)
    no_user = tmp_path / "no_user.jsonl"
    no_user.write_text(json.dumps({"messages": [{"role": "assistant", "content": "x"}]}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"no_user\.jsonl:1: messages"):
        read_conversations(no_user)
    with pytest.raises(UserError, match="between 1 and 20"):
        build_sample_request(test_jsonl, n=21)
    with pytest.raises(UserError, match="no such file"):
        read_conversations(tmp_path / "missing.jsonl")


def test_cli_writes_atomically(test_jsonl: Path, tmp_path: Path) -> None:
    out = tmp_path / "endpoints" / "sample_score.json"
    command = [sys.executable, "-m", "tools", "score", "sample-request", "--from", str(test_jsonl), "--out", str(out),
               "--seed", "1", "--max-new-tokens", "50", "--no-do-sample"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    body = json.loads(out.read_text(encoding="utf-8"))
    assert body["input_data"]["parameters"]["max_new_tokens"] == 50
    assert body["input_data"]["parameters"]["do_sample"] is False
    assert sorted(p.name for p in out.parent.iterdir()) == ["sample_score.json"]  # no temporary file left
    assert body == build_sample_request(
        test_jsonl, seed=1, parameters=generation_parameters(max_new_tokens=50, do_sample=False)
    )


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tools", "score", "sample-request", "--from", str(tmp_path / "nope.jsonl"),
               "--out", str(tmp_path / "x.json")]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no such file" in done.stderr
    assert not (tmp_path / "x.json").exists()


def test_committed_sample_request_is_what_the_tool_writes() -> None:
    """endpoints/sample_score.json is `score sample-request --from data/sample/test_sft.jsonl --seed 0` with the
    dev workspace's scoring values: regenerating it gives the same bytes."""
    from tools.render.values import load_values
    from tools.serve.score import generation_parameters

    scoring = load_values("dev").data["scoring"]
    params = generation_parameters(
        scoring["temperature"], scoring["top_p"], scoring["do_sample"], scoring["max_new_tokens"]
    )
    body = build_sample_request(REPO_ROOT / "data/sample/test_sft.jsonl", n=1, seed=0, parameters=params)
    committed = json.loads((REPO_ROOT / "endpoints" / "sample_score.json").read_text())
    assert committed == body


def test_bundled_sample_data_works() -> None:
    sample = REPO_ROOT / "data/sample/test_sft.jsonl"
    body = build_sample_request(sample, n=2, seed=0)
    assert all(c[-1]["role"] == "user" for c in body["input_data"]["input_string"])
