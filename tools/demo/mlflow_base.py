"""The untrained base model as an MLflow chat model (``llm/v1/chat``), saved by components/finetune-sft's own save
function (same requirements, same signature, same weight check), so the demo's evaluation compares two folders of
the same format (the base is the champion of a first promotion)."""

from __future__ import annotations

from pathlib import Path

from tools.core.repo import active
from tools.core.scripts import load_script


def save_mlflow_chat_model(model_dir: Path, out: Path) -> Path:
    """Load a transformers folder (weights + tokenizer with a chat template) and save it as an MLflow chat model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    fine_tune = load_script(active().sft_script, "fine_tune_for_the_base_model")
    fine_tune.save_mlflow_model(model, tokenizer, out)
    return out
