"""The untrained base model as an MLflow chat model (``llm/v1/chat``), saved the way components/finetune-sft saves
the fine-tune, so the demo's evaluation compares two folders of the same format (the base is the champion of a
first promotion)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SERVING_PACKAGES = ("torch", "transformers", "accelerate", "tokenizers", "safetensors", "jinja2", "mlflow")


def save_mlflow_chat_model(model_dir: Path, out: Path) -> Path:
    """Load a transformers folder (weights + tokenizer with a chat template) and save it as an MLflow chat model."""
    import mlflow.transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    tokenizer.padding_side = "left"
    requirements = []
    for package in SERVING_PACKAGES:
        try:
            requirements.append(f"{package}=={version(package).split('+')[0]}")
        except PackageNotFoundError:
            requirements.append(package)
    mlflow.transformers.save_model(transformers_model={"model": model, "tokenizer": tokenizer}, path=str(out),
                                   task="llm/v1/chat", pip_requirements=requirements)  # fmt: skip
    return out
