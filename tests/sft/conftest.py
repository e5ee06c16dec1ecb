"""Session fixtures for the SFT tests: one tiny Phi-3 model, synthetic ultrachat-style data, a runner for
fine_tune.py as a subprocess (what Azure ML runs) with a temporary MLflow store and modest threads."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tools.core.repo import REPO_ROOT, Repo  # one source for the root and the script's path
from tools.core.scripts import load_script

FINE_TUNE = Repo(REPO_ROOT).sft_script
TOPICS = ("the sea", "bread", "Paris", "computers", "music", "rivers", "the sky", "python")


def chat_row(i: int) -> dict:
    topic = TOPICS[i % len(TOPICS)]
    question = f"Tell me about {topic}."
    messages = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": f"Here is a short answer about {topic}: the assistant is helpful."},
    ]
    if i % 3 == 0:
        messages += [{"role": "user", "content": "Thank you!"}, {"role": "assistant", "content": "You are welcome."}]
    return {"prompt": question, "prompt_id": hashlib.sha256(question.encode()).hexdigest(), "messages": messages}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    work_dir: Path
    metrics: dict | None
    tracking_uri: str


@pytest.fixture(scope="session", name="chat_row")
def chat_row_fixture() -> Callable[[int], dict]:
    """The synthetic ultrachat-style row builder, for tests that write their own files."""
    return chat_row


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.demo.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-phi3", seed=0)


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chats")
    return {
        "train": write_jsonl(root / "train.jsonl", [chat_row(i) for i in range(64)]),
        "eval": write_jsonl(root / "eval.jsonl", [chat_row(i) for i in range(100, 108)]),
    }


@pytest.fixture(scope="session")
def run_fine_tune(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Run]:
    """Run fine_tune.py in a subprocess; ``args`` are extra CLI arguments."""
    mlflow_home = tmp_path_factory.mktemp("sft-mlflow")
    tracking_uri = f"sqlite:///{mlflow_home / 'mlflow.db'}"
    counter = iter(range(1000))

    def run(*args: str, output_dir: Path | None = None, timeout: int = 240) -> Run:
        root = tmp_path_factory.mktemp(f"sft-run-{next(counter)}")
        out = output_dir or root / "model"
        work = root / "work"
        metrics = root / "metrics.json"
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        command = [sys.executable, str(FINE_TUNE), "--output-dir", str(out), "--work-dir", str(work),
                   "--metrics-json", str(metrics), *args]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=timeout)
        loaded = json.loads(metrics.read_text()) if metrics.is_file() else None
        return Run(proc.returncode, proc.stdout, proc.stderr, out, work, loaded, tracking_uri)

    return run


@pytest.fixture(scope="session")
def fine_tune_module() -> ModuleType:
    return load_script(FINE_TUNE, "fine_tune_under_test")


@pytest.fixture(scope="session")
def call_main(tmp_path_factory: pytest.TempPathFactory, fine_tune_module: ModuleType) -> Callable[..., Run]:
    """Run fine_tune.main() in this process (imports are paid once): same CLI, stdout/stderr captured."""
    import torch

    torch.set_num_threads(2)
    tracking_uri = f"sqlite:///{tmp_path_factory.mktemp('sft-mlflow-inproc') / 'mlflow.db'}"
    counter = iter(range(1000))

    def run(*args: str, output_dir: Path | None = None) -> Run:
        root = tmp_path_factory.mktemp(f"sft-main-{next(counter)}")
        out, work, metrics = output_dir or root / "model", root / "work", root / "metrics.json"
        argv = ["--output-dir", str(out), "--work-dir", str(work), "--metrics-json", str(metrics), *args]
        stdout, stderr = io.StringIO(), io.StringIO()
        saved = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    code = fine_tune_module.main(argv)
                except SystemExit as exit_:
                    code = int(exit_.code or 0)
        finally:
            if saved is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = saved
        loaded = json.loads(metrics.read_text()) if metrics.is_file() else None
        return Run(code, stdout.getvalue(), stderr.getvalue(), out, work, loaded, tracking_uri)

    return run


TRAIN_ARGS = ("--max-steps", "20", "--logging-steps", "2", "--max-length", "128", "--per-device-train-batch-size",
              "4", "--gradient-accumulation-steps", "1", "--warmup", "0.1", "--seed", "0")  # fmt: skip


@pytest.fixture(scope="session")
def full_run(run_fine_tune: Callable[..., Run], tiny_model: Path, chat_data: dict[str, Path]) -> Run:
    result = run_fine_tune("--train-file", str(chat_data["train"]), "--eval-file", str(chat_data["eval"]),
                           "--model-name-or-path", str(tiny_model), "--learning-rate", "1e-3", *TRAIN_ARGS)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def lora_run(call_main: Callable[..., Run], tiny_model: Path, chat_data: dict[str, Path]) -> Run:
    result = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model),
                           "--lora", "--lora-r", "8", "--lora-alpha", "16", "--learning-rate", "5e-3",
                           *TRAIN_ARGS)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result
