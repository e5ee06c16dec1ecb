"""The served model's context window and the prompt length of a conversation, read from the MLflow model folder.

An MLflow ``transformers`` model keeps the weights' ``config.json`` under ``flavors.transformers.model_binary``
and the tokenizer under ``components/tokenizer``. The context is the smaller of the model's
``max_position_embeddings`` and the tokenizer's ``model_max_length`` (transformers writes a huge sentinel there
when the tokenizer has no limit, which is ignored). A prompt is counted as MLflow's chat task builds it: the
tokenizer's chat template with the generation prompt, tokenized without extra special tokens
(mlflow/transformers/llm_inference_utils.py, ``convert_messages_to_prompt``). A model of another flavor has no
known context: no cap applies.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHUNK_CHARS = 64 * 1024  # characters of a rendered prompt tokenized at once (bounded memory per count)
_NO_LIMIT = 10**9  # transformers' "no limit" sentinel is int(1e30); anything this large is not a real context


@dataclass(frozen=True)
class Context:
    """The context window in tokens and the file (and key) it came from."""

    tokens: int
    source: str


def context_of(model_dir: str | Path) -> Context | None:
    """The model's context window, or None when the folder does not say (not a transformers model)."""
    root = Path(model_dir)
    try:
        mlmodel = yaml.safe_load((root / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    flavor = (mlmodel.get("flavors") or {}).get("transformers") if isinstance(mlmodel, dict) else None
    if not isinstance(flavor, dict):
        return None
    found: list[Context] = []
    config = _json(root / str(flavor.get("model_binary") or "model") / "config.json")
    if isinstance(config.get("max_position_embeddings"), int) and config["max_position_embeddings"] > 0:
        found.append(Context(config["max_position_embeddings"], "max_position_embeddings in the model's config.json"))
    tokenizer = _json(root / "components" / "tokenizer" / "tokenizer_config.json")
    length = tokenizer.get("model_max_length")
    if isinstance(length, (int, float)) and 0 < length < _NO_LIMIT:
        found.append(Context(int(length), "model_max_length in the tokenizer's tokenizer_config.json"))
    return min(found, key=lambda c: c.tokens) if found else None


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class PromptCounter:
    """Counts a conversation's prompt tokens with the served model's own tokenizer (loaded once, in the
    background: ``ready`` tells when; thread-safe)."""

    def __init__(self, model_dir: str | Path) -> None:
        self._dir = Path(model_dir) / "components" / "tokenizer"
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.error: str | None = None
        self.loaded = threading.Event()

    def load(self) -> None:
        try:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._dir)
        except Exception as error:  # noqa: BLE001 - any loader failure is reported by the endpoint, not raised
            self.error = f"cannot load the tokenizer from {self._dir}: {type(error).__name__}: {error}"
        finally:
            self.loaded.set()

    def count_within(self, messages: list[dict], limit: int, deadline: float | None = None) -> tuple[int, bool]:
        """Prompt tokens of ``messages`` counted no further than ``limit``: ``(tokens, True)`` when exact,
        ``(n, False)`` when the prompt has at least ``n >= limit`` tokens and the rest was not tokenized.

        The rendered prompt is tokenized ``CHUNK_CHARS`` characters at a time, so memory stays bounded whatever the
        body holds (a whole 4-million-character prompt took the process from ~260 MiB to 1.2 GiB). A chunk boundary
        may split a token in two: only a prompt longer than a chunk is over-counted, by at most one token a chunk.
        TimeoutError past ``deadline`` (``time.monotonic()``, checked between chunks); ValueError as :meth:`count`."""
        import time

        if self._tokenizer is None:
            raise ValueError(self.error or "the tokenizer is not loaded yet")
        try:
            with self._lock:
                prompt = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                total = 0
                for start in range(0, len(prompt), CHUNK_CHARS):
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError("counting the prompt's tokens ran past the request timeout")
                    chunk = prompt[start : start + CHUNK_CHARS]
                    total += len(self._tokenizer(chunk, add_special_tokens=False)["input_ids"])
                    if total >= limit and start + CHUNK_CHARS < len(prompt):
                        return total, False
                return total, True
        except TimeoutError:
            raise
        except Exception as error:  # noqa: BLE001 - jinja and tokenizer errors are the request's fault here
            raise ValueError(f"the model's chat template cannot render these messages: {error}") from None

    def count(self, messages: list[dict]) -> int:
        """Prompt tokens of ``messages``; ValueError (with the template's reason) when the template refuses them."""
        if self._tokenizer is None:
            raise ValueError(self.error or "the tokenizer is not loaded yet")
        try:
            with self._lock:
                prompt = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                return len(self._tokenizer(prompt, add_special_tokens=False)["input_ids"])
        except Exception as error:  # noqa: BLE001 - jinja and tokenizer errors are the request's fault here
            raise ValueError(f"the model's chat template cannot render these messages: {error}") from None
