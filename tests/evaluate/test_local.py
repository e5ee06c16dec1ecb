"""``python -m tools evaluate`` on real MLflow chat models (the tiny Phi-3, untrained and fine-tuned): the better
model passes with report, table and plot; the reverse is refused naming the metric; the interval is the same for the
same seed; hostile inputs (a folder that is not a model, an empty gate set, rows without an assistant turn, an
endpoint that errors) are one line and exit 2."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.__main__ import main
from tools.evaluate.report import read_report

FAST = ("--max-new-tokens", "6", "--resamples", "300", "--no-progress")


def evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["evaluate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_fine_tune_passes_with_report_table_and_plot(models: dict, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "pass"
    code, stdout, stderr = evaluate(capsys, "--candidate", str(models["tuned"]), "--champion", str(models["base"]),
                                    "--data", str(models["gate"]), "--out", str(out),
                                    "--training-metrics", str(models["metrics"]), *FAST)  # fmt: skip
    assert code == 0, stdout + stderr
    report = read_report(out)
    assert report["verdict"] == "pass" and report["gate"]["rows"] == 20
    nll = report["metrics"]["nll"]
    assert nll["candidate"] < nll["champion"] - 0.5 and nll["ci95"][1] < 0  # it learned the rows' surface
    assert {"rouge_l", "bleu", "token_f1", "answer_words", "latency_s", "error_rate"} <= set(report["metrics"])
    assert "verdict: PASS" in stdout and "| nll |" in (out / "report.md").read_text()
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_base_against_the_fine_tune_is_refused_and_the_interval_repeats(models: dict, tmp_path: Path,
                                                                            capsys) -> None:  # noqa: ANN001
    args = ("--candidate", str(models["base"]), "--champion", str(models["tuned"]), "--data", str(models["gate"]),
            "--no-generation", *FAST)  # fmt: skip
    code, stdout, stderr = evaluate(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 1, stdout + stderr
    refusal = [line for line in stderr.splitlines() if line.startswith("refused: nll:")]
    assert len(refusal) == 1 and "candidate" in refusal[0] and "champion" in refusal[0] and "95% CI" in refusal[0]
    again, _, _ = evaluate(capsys, *args, "--out", str(tmp_path / "b"))
    first, second = read_report(tmp_path / "a"), read_report(tmp_path / "b")
    assert again == 1 and first["metrics"]["nll"]["ci95"] == second["metrics"]["nll"]["ci95"]
    assert first["verdict"] == "fail" and first["settings"]["not_measured"] == ["bleu", "error_rate", "rouge_l",
                                                                                 "token_f1"]  # fmt: skip


def _one_line_exit_2(result: tuple[int, str, str], words: str) -> None:
    code, _, stderr = result
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in stderr, stderr


def test_hostile_model_folders_and_gate_sets(models: dict, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    not_a_model = tmp_path / "plain"
    not_a_model.mkdir()
    common = ("--out", str(tmp_path / "x"), *FAST)
    _one_line_exit_2(evaluate(capsys, "--candidate", str(not_a_model), "--champion", str(models["base"]),
                              "--data", str(models["gate"]), *common), "not an MLflow model")  # fmt: skip
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _one_line_exit_2(evaluate(capsys, "--candidate", str(models["tuned"]), "--champion", str(models["base"]),
                              "--data", str(empty), *common), "the gate set is empty")  # fmt: skip
    no_answer = tmp_path / "no-answer.jsonl"
    no_answer.write_text(json.dumps({"messages": [{"role": "user", "content": "hello?"}]}) + "\n")
    _one_line_exit_2(evaluate(capsys, "--candidate", str(models["tuned"]), "--champion", str(models["base"]),
                              "--data", str(no_answer), *common), "no assistant turn")  # fmt: skip


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server hook
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "model crashed"}')

    def log_message(self, *args: object) -> None:
        return


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A scoring URL on 127.0.0.1 answered by ``handler`` until the generator is closed."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/score"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def failing_endpoint() -> Iterator[str]:
    yield from _serve(_Failing)


def test_an_endpoint_that_errors_is_one_line(models: dict, failing_endpoint: str, tmp_path: Path,
                                             capsys) -> None:  # noqa: ANN001
    result = evaluate(capsys, "--candidate", failing_endpoint, "--champion", failing_endpoint,
                      "--candidate-deployment", "green", "--data", str(models["gate"]), "--out", str(tmp_path / "e"),
                      *FAST)  # fmt: skip
    _one_line_exit_2(result, "the first 3 requests failed: HTTP 500")


class _TwoDeployments(http.server.BaseHTTPRequestHandler):
    """An endpoint with two deployments chosen by the ``azureml-model-deployment`` header: green answers like the
    gate rows' references, blue answers noise."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        question = body["input_data"]["input_string"][0][-1]["content"]
        topic = question.split("about ", 1)[1].split(",", 1)[0]
        good = self.headers.get("azureml-model-deployment") == "green"
        answer = f"Here is a short answer about {topic}: the assistant is helpful." if good else "zq xv wk"
        payload = json.dumps({"output": answer}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def two_deployments() -> Iterator[str]:
    yield from _serve(_TwoDeployments)


def test_deployments_of_a_running_endpoint_are_compared_on_generation(models: dict, two_deployments: str,
                                                                     tmp_path: Path, capsys) -> None:  # noqa: ANN001
    args = ("--endpoint-url", two_deployments, "--data", str(models["gate"]), *FAST)
    code, stdout, stderr = evaluate(capsys, "--candidate", "deployment:green", "--champion", "deployment:blue", *args,
                                    "--out", str(tmp_path / "g"))  # fmt: skip
    assert code == 0, stdout + stderr
    report = read_report(tmp_path / "g")
    assert "nll" not in report["metrics"] and report["metrics"]["rouge_l"]["candidate"] > 0.9
    assert report["candidate"]["id"].endswith("#green") and report["settings"]["not_measured"] == ["nll"]
    code, _, stderr = evaluate(capsys, "--candidate", "deployment:blue", "--champion", "deployment:green", *args,
                               "--out", str(tmp_path / "b"))  # fmt: skip
    assert code == 1 and any(line.startswith("refused: rouge_l:") for line in stderr.splitlines()), stderr
