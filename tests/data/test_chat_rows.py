"""The row rules: pure checks, their vectorised twin (never more lenient), split syntax, summaries."""

from __future__ import annotations

import json
import random

import pytest

from tools.data.options import SliceSpec, parse_split
from tools.data.rows import REASONS, SeenIds, check_row, distribution, is_sft_split
from tools.data.selection import pair_name, slice_output_names


def _random_row(rng: random.Random) -> dict:
    roles = ["user", "assistant", "system", "bot", None]
    contents = ["hello", "", " \t", None, 'a "quoted" \\ line\nnext', "é"]
    messages: list | None
    if rng.random() < 0.1:
        messages = None
    else:
        messages = []
        first_system = rng.random() < 0.2
        for i in range(rng.randint(0, 6)):
            if rng.random() < 0.05:
                messages.append(None)
                continue
            if rng.random() < 0.8:  # mostly well-formed, so good rows are common too
                role = "system" if first_system and i == 0 else ["user", "assistant"][(i - first_system) % 2]
                content = "hello"
            else:
                role, content = rng.choice(roles), rng.choice(contents)
            messages.append({"content": content, "role": role})
    return {"prompt": "p", "prompt_id": rng.choice(["id", "id", "id", "", "  ", None]), "messages": messages}


@pytest.mark.parametrize("sft", [True, False])
def test_vectorised_rules_agree_with_row_rules(sft: bool) -> None:
    import pyarrow as pa

    from tools.data import arrow as chat_arrow

    rng = random.Random(7)
    rows = [_random_row(rng) for _ in range(3000)]
    schema = pa.schema(
        [
            ("prompt", pa.string()),
            ("prompt_id", pa.string()),
            ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    expected = [check_row(r["prompt_id"], r["messages"], require_final_assistant=sft) is None for r in rows]
    assert chat_arrow.good_rows(table, require_final_assistant=sft).tolist() == expected
    assert 150 < sum(expected) < 2850  # both kinds well represented


def test_arrow_json_lines_match_the_stdlib_encoder() -> None:
    import pyarrow as pa

    from tools.data import arrow as chat_arrow

    rows = [
        {
            "prompt": 'q "1"\t\\',
            "prompt_id": "a\nb",
            "messages": [{"content": "x\r\n\b\f\u2028 é 😀 /", "role": "user"}, {"content": "ok", "role": "assistant"}],
        }
    ]
    table = pa.Table.from_pylist(rows)
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
    expected = "".join(encoder.encode(r) + "\n" for r in rows).encode()
    assert bytes(chat_arrow.string_bytes(chat_arrow.jsonl_lines(table))) == expected
    rows[0]["prompt"] = "bell \x07"  # a rare control character: the row path takes over
    assert chat_arrow.jsonl_lines(pa.Table.from_pylist(rows)) is None


@pytest.mark.parametrize(
    ("messages", "sft", "reason"),
    [
        ([{"content": "hi", "role": "user"}, {"content": "yo", "role": "assistant"}], True, None),
        (
            [
                {"content": "s", "role": "system"},
                {"content": "hi", "role": "user"},
                {"content": "yo", "role": "assistant"},
            ],
            True,
            None,
        ),
        ([{"content": "hi", "role": "user"}], False, None),
        ([{"content": "hi", "role": "user"}], True, "no-final-assistant"),
        ([{"content": "s", "role": "system"}], False, "roles-not-alternating"),
        ("text", True, "messages-not-list"),
        ([], True, "messages-empty"),
        (["x"], True, "bad-message"),
        ([{"content": "hi", "role": "User"}], True, "bad-role"),
        ([{"content": 3, "role": "user"}], True, "empty-content"),
    ],
)
def test_check_row_reasons(messages: object, sft: bool, reason: str | None) -> None:
    problem = check_row("id", messages, require_final_assistant=sft)
    assert (problem[0] if problem else None) == reason
    if problem:
        assert problem[0] in REASONS and problem[1]


def test_prompt_id_rules() -> None:
    ok = [{"content": "hi", "role": "user"}, {"content": "yo", "role": "assistant"}]
    assert check_row(None, ok, require_final_assistant=True)[0] == "missing-prompt-id"
    assert check_row(" ", ok, require_final_assistant=True)[0] == "missing-prompt-id"
    assert check_row(17, ok, require_final_assistant=True) is None  # JSON sources may hold numeric ids


def test_split_syntax_and_names() -> None:
    assert parse_split("train_sft[:1%]") == SliceSpec("train_sft", None, (1, True))
    assert parse_split("train_sft[:1%]").bounds(207865) == (0, 2079)  # datasets: round(1 * 207865 / 100)
    assert parse_split("test_gen[10:20]").bounds(None) == (10, 20)
    assert parse_split("train_sft[50%:]").bounds(11) == (6, 11)  # round(5.5) == 6 (banker's, like datasets)
    assert slice_output_names("train_sft") == ("train_sft", "test_sft")
    assert slice_output_names("rows") == ("train_rows", "test_rows")
    assert pair_name("test_gen") == "train_gen" and pair_name("train_gen") is None
    assert is_sft_split("test_sft") and not is_sft_split("train_gen")


def test_distribution() -> None:
    assert distribution([]) == {"min": None, "median": None, "p95": None, "max": None}
    assert distribution([3, 1, 2, 4]) == {"min": 1, "median": 2.5, "p95": 4, "max": 4}
    assert distribution(list(range(1, 101)))["p95"] == 95


def test_seen_ids_answer_like_a_set_across_folds_with_and_without_prefetch() -> None:
    rng = random.Random(7)
    seen, reference = SeenIds(), set()
    seen.FOLD_AT = 16  # fold into the sorted array often
    for batch in range(60):
        ids = [f"id-{rng.randrange(400)}" for _ in range(rng.randrange(1, 30))]
        if batch % 3:
            seen.prefetch(ids[: len(ids) // 2 + 1] if batch % 5 == 0 else ids)  # some ids left to the slow path
        for pid in ids:
            assert (pid in seen) == (pid in reference)
            assert seen.add(pid) == (pid not in reference)
            reference.add(pid)
            assert pid in seen
        assert len(seen) == len(reference)
    assert seen._sorted is not None and len(seen._sorted) > len(seen._recent)
    assert 3 not in seen and "never" not in seen
