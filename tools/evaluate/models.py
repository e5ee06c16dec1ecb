"""The two kinds of model an evaluation scores, behind one ``score(example) -> RowScore``:

* :class:`LocalChatModel`, an MLflow chat model folder loaded with transformers: reference NLL of every assistant
  turn (teacher forcing) and a greedy answer to the context, with its latency. Two MLflow layouts are read: the
  ``transformers`` flavor with ``inference_task: llm/v1/chat`` (what ``components/finetune-sft`` writes; weights
  under ``model_binary``, tokenizer under ``components/tokenizer``; mlflow/transformers/__init__.py) and Azure's
  ``hftransformersv2`` flavor with ``task_type: chat-completion`` (registry models and the registry fine-tuning
  pipeline's output; weights and tokenizer under ``data/model``, an older layout keeps ``data/tokenizer``;
  azureml-assets ``assets/models/system/*/MLmodel`` and ``finetune_acft_hf_nlp/src/model_converter``).
* :class:`EndpointChatModel`, a running scoring URI (local or Azure, one deployment by name through the
  ``azureml-model-deployment`` header): answers and latency only, since an endpoint returns no token
  probabilities; a failed request is an error row (the error rate), and an endpoint whose first requests all fail
  stops the run with that error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .gate import Example
from .metrics import RowScore

CHAT_TASKS = {"transformers": "llm/v1/chat", "hftransformersv2": "chat-completion"}
GIVE_UP_AFTER = 3  # an endpoint whose first N requests all fail is unusable, not merely error-prone


class ModelError(ValueError):
    """A model that cannot be scored; ``str(error)`` is one line naming the folder or endpoint."""


@dataclass(frozen=True)
class ModelFolder:
    root: Path
    flavor: str
    weights: Path
    tokenizer: Path


def inspect_model(path: str | Path) -> ModelFolder:
    """Check that ``path`` is an MLflow chat model folder and say where its weights and tokenizer are."""
    root = Path(path)
    expected = "expected an MLflow chat model folder (MLmodel with flavor transformers, llm/v1/chat)"
    if not root.is_dir():
        raise ModelError(f"{root}: no such folder; {expected}")
    try:
        mlmodel = yaml.safe_load((root / "MLmodel").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{root}: not an MLflow model (no MLmodel file); {expected}") from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise ModelError(f"{root}/MLmodel: unreadable ({type(error).__name__}); {expected}") from None
    mlmodel = mlmodel if isinstance(mlmodel, dict) else {}
    flavors = mlmodel.get("flavors") if isinstance(mlmodel.get("flavors"), dict) else {}
    metadata = mlmodel.get("metadata") if isinstance(mlmodel.get("metadata"), dict) else {}
    if isinstance(flavors.get("transformers"), dict):
        flavor = flavors["transformers"]
        task = flavor.get("inference_task") or metadata.get("task")
        if task != CHAT_TASKS["transformers"]:
            raise ModelError(f"{root}/MLmodel: transformers model with task {task!r}, not a chat model; {expected}")
        weights = root / str(flavor.get("model_binary") or "model")
        tokenizer = root / "components" / "tokenizer"
        found = ModelFolder(root, "transformers", weights, tokenizer if tokenizer.is_dir() else weights)
    elif isinstance(flavors.get("hftransformersv2"), dict):
        flavor = flavors["hftransformersv2"]
        task = flavor.get("task_type")
        if task != CHAT_TASKS["hftransformersv2"]:
            raise ModelError(f"{root}/MLmodel: hftransformersv2 model with task_type {task!r}, not chat-completion")
        data = root / str(flavor.get("model_data") or "data")
        weights, tokenizer = data / "model", data / "tokenizer"
        found = ModelFolder(root, "hftransformersv2", weights, tokenizer if tokenizer.is_dir() else weights)
    else:
        names = ", ".join(sorted(flavors)) or "none"
        raise ModelError(f"{root}/MLmodel: flavors {names}; {expected} or hftransformersv2 (chat-completion)")
    if not (found.weights / "config.json").is_file():
        raise ModelError(f"{root}: no config.json under {found.weights.relative_to(root)}; the model files are missing")
    return found


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


class LocalChatModel:
    """An MLflow chat model folder on this machine (CPU, or the first GPU when there is one)."""

    def __init__(self, folder: ModelFolder, max_length: int, max_new_tokens: int, generate: bool = True) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the rows' own progress bar is the one that matters
        self.folder, self.max_length, self.max_new_tokens, self.generate = folder, max_length, max_new_tokens, generate
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder.tokenizer), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(
                str(folder.weights), local_files_only=True,
                dtype=torch.bfloat16 if self.device == "cuda" else torch.float32,
            ).to(self.device)  # fmt: skip
        except (OSError, ValueError, KeyError) as error:
            raise ModelError(f"{folder.root}: cannot load the model ({_first_line(error)})") from None
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelError(f"{folder.root}: the tokenizer has no chat template; expected a chat model")
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _template(self, messages: Any, generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                  add_generation_prompt=generation_prompt)  # fmt: skip

    def assistant_spans(self, example: Example) -> tuple[str, list[tuple[int, int]]]:
        """The conversation as the chat template writes it and the character spans of its assistant turns."""
        text = self._template(example.messages)
        spans = []
        for i, message in enumerate(example.messages):
            if message["role"] != "assistant":
                continue
            start = len(self._template(example.messages[:i], generation_prompt=True))
            end = len(self._template(example.messages[: i + 1]))
            spans.append((start, min(end, len(text))))
        return text, spans

    def nll(self, example: Example) -> tuple[float, int]:
        """(sum of -log p over assistant tokens, their count), the conversation cut at ``max_length`` tokens."""
        import torch

        text, spans = self.assistant_spans(example)
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded["input_ids"][: self.max_length]
        offsets = encoded["offset_mapping"][: self.max_length]
        mask = [any(lo <= start < hi for lo, hi in spans) for start, _ in offsets]
        if len(ids) < 2 or not any(mask[1:]):
            return 0.0, 0
        with torch.no_grad():
            input_ids = torch.tensor([ids], device=self.device)
            logits = self.model(input_ids=input_ids).logits[0, :-1].float()
            logprobs = torch.log_softmax(logits, dim=-1).gather(1, input_ids[0, 1:, None])[:, 0]
            weights = torch.tensor(mask[1:], device=self.device, dtype=logprobs.dtype)
            return float(-(logprobs * weights).sum()), int(weights.sum())

    def answer(self, example: Example) -> tuple[str, float]:
        """A greedy answer to the context and the seconds it took."""
        import torch

        prompt = self._template(example.context, generation_prompt=True)
        ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = ids[:, -max(1, self.max_length - self.max_new_tokens):].to(self.device)
        begin = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=self.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        seconds = time.perf_counter() - begin
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip(), seconds

    def score(self, example: Example) -> RowScore:
        nll_sum, tokens = self.nll(example)
        if not self.generate:
            return RowScore(nll_sum=nll_sum, tokens=tokens)
        answer, seconds = self.answer(example)
        return RowScore(nll_sum=nll_sum, tokens=tokens, answer=answer, latency_s=seconds)


def scoring_client() -> Any:
    try:
        from tools.serve import scoring_client  # in the repo
    except ImportError:  # in the Azure ML job: shipped beside this package (additional_includes)
        import scoring_client  # type: ignore[no-redef]
    return scoring_client


class EndpointChatModel:
    """A running scoring URI (MLflow or Azure body), one deployment when ``deployment`` is given."""

    def __init__(self, url: str, key: str | None, deployment: str | None, max_new_tokens: int,
                 timeout: float = 90.0, retries: int = 2) -> None:  # fmt: skip
        self.client = scoring_client()
        if not url.startswith(("http://", "https://")):
            raise ModelError(f"{url}: not an http(s) scoring URI")
        self.url, self.key, self.deployment, self.timeout, self.retries = url, key, deployment, timeout, retries
        self.parameters = {"do_sample": False, "max_new_tokens": max_new_tokens}
        self.attempts = 0
        self.failures = 0
        self.first_error: str | None = None

    @property
    def label(self) -> str:
        return self.url + (f" (deployment {self.deployment})" if self.deployment else "")

    def score(self, example: Example) -> RowScore:
        body = self.client.azure_body([list(example.context)], self.parameters)
        begin = time.perf_counter()
        self.attempts += 1
        try:
            payload = self.client.post_score(self.url, self.key, body, timeout=self.timeout, retries=self.retries,
                                             deployment=self.deployment)  # fmt: skip
            answer = self.client.extract_answer(payload)
        except self.client.ScoringError as error:
            self.failures += 1
            self.first_error = self.first_error or str(error)
            if self.failures == self.attempts and self.attempts >= GIVE_UP_AFTER:
                raise ModelError(f"endpoint {self.label}: the first {self.attempts} requests failed: "
                                 f"{self.first_error}") from None  # fmt: skip
            return RowScore(latency_s=time.perf_counter() - begin, error=str(error))
        return RowScore(answer=answer, latency_s=time.perf_counter() - begin)
