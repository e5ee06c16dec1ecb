"""The evaluation's pure parts: metrics, the paired bootstrap, the verdict, the report format, the gate set reader
and the model-folder check. No model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.evaluate.gate import GateError, read_gate
from tools.evaluate.metrics import RowScore, bleu, rouge_l, token_f1
from tools.evaluate.models import ModelError, inspect_model
from tools.evaluate.report import SCHEMA, ReportError, check_report, read_report, text_table, write_report
from tools.evaluate.run import build_report
from tools.evaluate.verdict import PolicyError, check_policy

POLICY = check_policy({"min_rows": 5, "metrics": {"nll": {"direction": "lower", "margin": 0.05},
                                                  "rouge_l": {"direction": "higher", "margin": 0.02}}})  # fmt: skip


def _gate(tmp_path: Path, n: int = 30) -> Path:
    rows = [{"prompt_id": f"p{i}", "messages": [{"role": "user", "content": f"Question {i} about bread?"},
                                                {"role": "assistant", "content": f"Bake bread {i} slowly at home."}]}
            for i in range(n)]  # fmt: skip
    path = tmp_path / "gate.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _scores(gate, nll_per_token: float, good_answers: bool, jitter: int = 4) -> list[RowScore]:  # noqa: ANN001
    out = []
    for i, example in enumerate(gate.examples):
        answer = example.reference if good_answers and i % 3 else "something else entirely"
        nll = nll_per_token * 10 + (i * 7 % jitter) * 0.3
        out.append(RowScore(nll_sum=nll, tokens=10, answer=answer, latency_s=0.1))
    return out


def test_metrics_agree_with_their_definitions() -> None:
    assert token_f1("the cat sat", "the cat sat") == 1.0 and token_f1("dog", "the cat") == 0.0
    assert token_f1("the cat", "the cat sat on") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert 0 < rouge_l("the cat sat", "the cat sat on the mat") < 1
    assert bleu("the cat sat on the mat today", "the cat sat on the mat today") == pytest.approx(1.0)
    assert bleu("", "reference") == 0.0


def test_a_worse_candidate_is_refused_naming_the_metric_and_a_better_one_passes(tmp_path: Path) -> None:
    gate = read_gate(_gate(tmp_path))
    good, bad = _scores(gate, 1.0, True), _scores(gate, 2.0, False)
    passed = build_report(good, bad, gate, POLICY, 0, 500, ("good", "bad"), {})
    refused = build_report(bad, good, gate, POLICY, 0, 500, ("bad", "good"), {})
    assert passed["verdict"] == "pass" and passed["reasons"] == []
    assert refused["verdict"] == "fail"
    nll = refused["metrics"]["nll"]
    assert not nll["passed"] and nll["candidate"] > nll["champion"] and nll["ci95"][0] > 0.05
    assert any(r.startswith("nll: candidate 2.") and "95% CI" in r for r in refused["reasons"])
    assert not refused["metrics"]["rouge_l"]["passed"]
    assert refused["metrics"]["latency_s"]["passed"] and refused["metrics"]["latency_s"]["margin"] is None
    check_report(refused)
    assert "verdict: FAIL" in text_table(refused)


def test_the_interval_is_reproducible_for_a_seed(tmp_path: Path) -> None:
    gate = read_gate(_gate(tmp_path))
    a, b = _scores(gate, 1.0, True), _scores(gate, 1.2, False, jitter=11)
    first = build_report(a, b, gate, POLICY, 7, 500, ("a", "b"), {})
    second = build_report(a, b, gate, POLICY, 7, 500, ("a", "b"), {})
    other = build_report(a, b, gate, POLICY, 8, 500, ("a", "b"), {})
    assert first["metrics"] == second["metrics"]
    assert first["metrics"]["nll"]["ci95"] != other["metrics"]["nll"]["ci95"]


def test_too_few_rows_and_a_floor_fail(tmp_path: Path) -> None:
    gate = read_gate(_gate(tmp_path, 4))
    scores = _scores(gate, 1.0, True)
    report = build_report(scores, scores, gate, POLICY, 0, 200, ("a", "b"), {})
    assert report["verdict"] == "fail" and report["reasons"] == ["gate set: 4 rows, fewer than min_rows 5"]
    floor = check_policy({"min_rows": 1, "metrics": {"rouge_l": {"floor": 0.99}}})
    report = build_report(scores, scores, gate, floor, 0, 200, ("a", "b"), {})
    assert report["verdict"] == "fail" and "below the floor 0.99" in report["reasons"][0]


def test_a_bad_policy_is_one_line() -> None:
    for policy, words in (({"metrics": {"rogue": {}}}, "unknown metric"), ({"min_rows": 0}, "min_rows"),
                          ({"metrics": {"nll": {"margin": -1}}}, "margin")):  # fmt: skip
        with pytest.raises(PolicyError, match=words) as caught:
            check_policy(policy)
        assert "\n" not in str(caught.value)


def test_report_round_trip_and_a_broken_report_is_one_line(tmp_path: Path) -> None:
    gate = read_gate(_gate(tmp_path))
    scores = _scores(gate, 1.0, True)
    report = build_report(scores, scores, gate, POLICY, 0, 200, ("a", "b"), {})
    write_report(tmp_path / "out", report)
    assert read_report(tmp_path / "out") == report and report["schema"] == SCHEMA
    assert "| nll |" in (tmp_path / "out" / "report.md").read_text()
    broken = dict(report, metrics={"nll": dict(report["metrics"]["nll"], ci95=[1, 0])})
    with pytest.raises(ReportError, match=r"metrics.nll.ci95: expected \[lo, hi\]"):
        check_report(broken)


@pytest.mark.parametrize(("text", "words"), [
    ("", "the gate set is empty"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', ":1: messages: no assistant turn"),
    ("not json\n", ":1: not a JSON line"),
    ('{"messages": [{"role": "robot", "content": "hi"}]}\n', "messages[0]: expected {role"),
])  # fmt: skip
def test_a_hostile_gate_set_is_one_line(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "gate.jsonl"
    path.write_text(text)
    with pytest.raises(GateError) as caught:
        read_gate(path)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_folder_that_is_not_an_mlflow_chat_model_is_one_line(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}")
    sklearn = tmp_path / "sklearn"
    sklearn.mkdir()
    (sklearn / "MLmodel").write_text("flavors:\n  sklearn: {pickled_model: model.pkl}\n")
    completion = tmp_path / "completion"
    completion.mkdir()
    (completion / "MLmodel").write_text("flavors:\n  transformers: {inference_task: llm/v1/completions}\n")
    for folder, words in ((plain, "not an MLflow model (no MLmodel file)"), (sklearn, "flavors sklearn"),
                          (completion, "not a chat model"), (tmp_path / "missing", "no such folder")):  # fmt: skip
        with pytest.raises(ModelError) as caught:
            inspect_model(folder)
        assert words in str(caught.value) and "\n" not in str(caught.value)


def test_azure_registry_layout_is_recognised(tmp_path: Path) -> None:
    root = tmp_path / "phi"
    (root / "data" / "model").mkdir(parents=True)
    (root / "data" / "model" / "config.json").write_text("{}")
    (root / "MLmodel").write_text("flavors:\n  hftransformersv2: {model_data: data, task_type: chat-completion}\n")
    found = inspect_model(root)
    assert found.flavor == "hftransformersv2" and found.weights == found.tokenizer == root / "data" / "model"
