"""The offline switches: one place that keeps Hugging Face, MLflow, tokenizers and Prompt flow off the network."""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "TOKENIZERS_PARALLELISM": "false",
    "PF_DISABLE_TRACING": "true",
}


def apply_offline_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set every offline switch that the caller has not set explicitly; return the environment."""
    target = os.environ if environ is None else environ
    for key, value in OFFLINE_ENV.items():
        target.setdefault(key, value)
    return target  # type: ignore[return-value]
