"""The offline switches: one place that keeps Hugging Face, MLflow, tokenizers and Prompt flow off the network, and
the one documented way back online (``--online`` on the commands that fetch: ``data prepare`` from the hub).

Every ``python -m tools`` command and the test suite start offline. A switch the user has set explicitly wins
(``HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0`` also goes online, e.g. for scripts run outside ``python -m tools``).
``--online`` sets the hub switches to ``0`` after the command's options are parsed, which is before any
Hugging Face library is imported (they read the switches once, at import; see
https://huggingface.co/docs/huggingface_hub/package_reference/environment_variables#hfhuboffline).
"""

from __future__ import annotations

import argparse
import os
import sys

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

# The switches that keep the Hugging Face Hub away; --online turns exactly these off (telemetry stays off).
HUB_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
TRUE_VALUES = frozenset({"1", "ON", "YES", "TRUE"})

ONLINE_OPTION = "--online"
# What every "the hub is off" message says (one source): the option, and the variables for scripts.
GO_ONLINE_HINT = f"add {ONLINE_OPTION} to fetch from the Hugging Face Hub"
# The libraries that read the switches once, at import: going online after one of them is imported is a bug.
_READ_AT_IMPORT = ("huggingface_hub", "datasets", "transformers")


def apply_offline_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set every offline switch that the caller has not set explicitly; return the environment."""
    target = os.environ if environ is None else environ
    for key, value in OFFLINE_ENV.items():
        target.setdefault(key, value)
    return target  # type: ignore[return-value]


def hub_offline(environ: dict[str, str] | None = None) -> bool:
    """Whether a hub switch is on in ``environ`` (default: this process's environment)."""
    source = os.environ if environ is None else environ
    return any(source.get(key, "").strip().upper() in TRUE_VALUES for key in HUB_SWITCHES)


def go_online(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Turn the hub switches off (``0``), overriding any value; return the environment.

    Raises RuntimeError when a Hugging Face library is already imported in this process: it has cached the switches,
    so the process would stay offline while saying otherwise.
    """
    target = os.environ if environ is None else environ
    if environ is None:
        loaded = [name for name in _READ_AT_IMPORT if name in sys.modules]
        if loaded:
            raise RuntimeError(f"go_online() after {', '.join(loaded)} was imported: it read the offline switches")
    for key in HUB_SWITCHES:
        target[key] = "0"
    return target  # type: ignore[return-value]


def add_online_argument(parser: argparse.ArgumentParser) -> None:
    """``--online`` on a command that fetches from the Hugging Face Hub (``tools/__main__.py`` acts on it)."""
    parser.add_argument(
        ONLINE_OPTION,
        action="store_true",
        help="allow the Hugging Face Hub (commands run offline by default; HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 "
        "does the same)",
    )
