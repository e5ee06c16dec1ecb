"""Session fixtures for the evaluation tests: the tiny Phi-3 base as an MLflow chat model, the same base fine-tuned
for a few steps with the real SFT script (components/finetune-sft), and a gate set of the same shape as the training
rows (held out: other rows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.core.repo import REPO_ROOT

FINE_TUNE = REPO_ROOT / "components" / "finetune-sft" / "src" / "fine_tune.py"
TOPICS = ("the sea", "bread", "Paris", "computers", "music", "rivers", "the sky", "python")


def chat_row(i: int) -> dict:
    topic = TOPICS[i % len(TOPICS)]
    question = f"Tell me about {topic}, part {i}."
    return {"prompt": question, "prompt_id": f"row-{i}", "messages": [
        {"role": "user", "content": question},
        {"role": "assistant", "content": f"Here is a short answer about {topic}: the assistant is helpful."}]}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"base": MLflow chat model (random weights), "tuned": the base after 30 SFT steps, "gate": 20 gate rows}."""
    from tools.demo.mlflow_base import save_mlflow_chat_model
    from tools.demo.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("evaluate")
    hf = build_tiny_model(root / "tiny-phi3", seed=0)
    base = save_mlflow_chat_model(hf, root / "base")
    train = write_jsonl(root / "train.jsonl", [chat_row(i) for i in range(64)])
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, str(FINE_TUNE), "--train-file", str(train), "--model-name-or-path", str(hf),
         "--output-dir", str(root / "tuned"), "--work-dir", str(root / "work"), "--max-steps", "30",
         "--learning-rate", "3e-3", "--max-length", "128", "--per-device-train-batch-size", "8",
         "--gradient-accumulation-steps", "1", "--warmup", "0.1", "--logging-steps", "5", "--seed", "0",
         "--metrics-json", str(root / "metrics.json")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    gate = write_jsonl(root / "gate.jsonl", [chat_row(i) for i in range(500, 520)])
    return {"base": base, "tuned": root / "tuned", "gate": gate, "metrics": root / "metrics.json"}
