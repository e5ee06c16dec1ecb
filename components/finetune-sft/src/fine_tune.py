"""Supervised fine-tuning of a chat model with TRL's SFTTrainer; writes an MLflow model (task llm/v1/chat).

Input rows are ultrachat-style JSONL: ``{"prompt": ..., "prompt_id": ..., "messages": [{"role", "content"}, ...]}``
(only ``messages`` is used). The model's chat template is applied to ``messages``, sequences are packed
(best-fit, padding-free; a conversation longer than ``--max-length`` is split, not cut: the log says how many tokens
were truncated, 0 by default), the loss is on the assistant turns where the template can mark them, the attention
is the fastest really available (one log line says which), and the model is trained fully or with LoRA. LoRA adapters
are merged into the base weights before the MLflow save, and the saved weights are checked against the merged
model. Train/eval metrics go to MLflow when ``MLFLOW_TRACKING_URI`` is set (inside Azure ML the job's run is
already active); progress is printed either way.

Runs as a single process or data-parallel whenever the launcher says the world size is above 1 (``torchrun``,
``accelerate launch``, an Azure ML command job with ``distribution: pytorch``: ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): NCCL on GPUs, gloo on CPUs. Each rank trains on its shard of
every global batch and gradients are averaged (DDP, or FSDP/DeepSpeed when asked); only rank 0 logs to MLflow,
writes the model and prints. Input errors are agreed on by all ranks before training, so a bad row that only one
rank sees still ends every rank with one line from rank 0; a rank that dies ends the others within one
collective (gloo/NCCL error, or the launcher's SIGTERM), each with one line.

Self-contained: needs only its own folder and the pinned environment. Bad input exits with status 2 and one line
naming the file/row/option and what was expected; a run ended by another rank's failure exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

EXIT_USER_ERROR = 2
EXIT_PEER_FAILED = 1
ROLES = ("system", "user", "assistant")
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
# "kernels": flash-attention from the `kernels` package's hub build (transformers' own choice for flash_attention_2
# without the flash_attn package); flex_attention: PyTorch's, with a document mask over packed conversations.
ATTENTION = ("auto", "kernels", "flash_attention_2", "flex_attention", "sdpa", "eager")
# TRL's packing strategies (trl/trainer/sft_config.py): bfd_split keeps the overflow of long conversations as more
# rows, bfd drops it.
PACKING_STRATEGIES = ("bfd_split", "bfd")
# Peak learning rate when --learning-rate is not given: LoRA adapters start at zero (B = 0) and need ~10x the rate of
# full fine-tuning (the LoRA paper's GPT-2 runs: 2e-4; TRL's LoRA examples: 2e-4).
DEFAULT_LEARNING_RATE = {"lora": 2e-4, "full": 2e-5}
PHI3_LORA_TARGETS = "qkv_proj,o_proj,gate_up_proj,down_proj"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Packages the MLflow model needs at serving time (explicit: MLflow's inference of them crashes in this stack),
# pinned to the versions this process runs.
SERVING_PACKAGES = ("torch", "transformers", "accelerate", "tokenizers", "safetensors", "jinja2", "mlflow")
# And what Azure's MLflow no-code deployment imports at start-up (its generated mlflow_score_script.py imports
# azureml.ai.monitoring; without these the container fails its probes with 502): Azure/azureml-examples PRs #3730,
# #3913, #3933, #4032. Not needed by the local endpoint (mlflow models serve), so pinned here, not installed there.
AZURE_SERVING_PACKAGES = ("azureml-inference-server-http==1.5.1", "azureml-ai-monitoring==1.0.0")


class UserInputError(Exception):
    """A mistake in the command line or the data: reported as one line, exit status 2."""


class RunStopped(Exception):  # noqa: N818 - not an error of this rank: another rank's failure ended the run
    """Ends this rank with ``code``; ``message`` (one line) is printed unless it is None (rank 0 already spoke)."""

    def __init__(self, message: str | None, code: int) -> None:
        super().__init__(message or "")
        self.message, self.code = message, code


_REPORTED = False  # one line per process at most: set once this process has decided how it ends


def _say_error(message: str) -> None:
    global _REPORTED
    if not _REPORTED:
        _REPORTED = True
        print(f"fine_tune.py: error: {message}", file=sys.stderr, flush=True)


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    _say_error(message)
    sys.exit(code)


def log(message: str) -> None:
    if _is_main_process():
        print(f"[fine_tune] {message}", flush=True)


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _rank() -> int:
    return _env_int("RANK", 0)


def _world_size() -> int:
    return max(_env_int("WORLD_SIZE", 1), 1)


def _is_main_process() -> bool:
    return _rank() == 0


# ----------------------------------------------------------------------------------------------------------- CLI


class _HelpFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` only where there is a default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, argparse.SUPPRESS) and "%(default)" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage + message; we keep one line
        if not _is_main_process():  # every rank has the same argv: rank 0 says it once for all
            sys.exit(EXIT_USER_ERROR)
        fail(f"{message} (see --help)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _dropout(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


class _BoolAction(argparse.BooleanOptionalAction):
    """``--x``, ``--no-x`` and ``--x true|false`` (Azure ML renders boolean inputs as True/False)."""

    TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.nargs = "?"
        self.metavar = "true|false"

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        if option_string and option_string.startswith("--no-"):
            if values is not None:
                parser.error(f"argument {option_string}: takes no value")
            setattr(namespace, self.dest, False)
        elif values is None:
            setattr(namespace, self.dest, True)
        elif str(values).lower() in self.TRUE + self.FALSE:
            setattr(namespace, self.dest, str(values).lower() in self.TRUE)
        else:
            parser.error(f"argument {option_string}: expected true or false, got {values!r}")


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog="fine_tune.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=_HelpFormatter,
    )
    io = p.add_argument_group("data and model")
    io.add_argument("--train-file", required=True, type=Path, help="training JSONL (or a folder of *.jsonl)")
    io.add_argument("--eval-file", type=Path, default=None, help="evaluation JSONL (or folder); optional")
    io.add_argument(
        "--model-name-or-path", required=True, help="base model: Hugging Face hub id or a local model folder"
    )
    io.add_argument("--output-dir", required=True, type=Path, help="empty or new folder for the MLflow model")
    io.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="scratch folder for the normalised data, dataset cache and the final trainer checkpoint "
        "(default: a temporary folder, removed at the end)",
    )
    io.add_argument("--metrics-json", type=Path, default=None, help="also write the metrics history here (JSON)")

    tr = p.add_argument_group("training")
    tr.add_argument("--epochs", type=_positive_float, default=1.0, help="number of epochs (fractional allowed)")
    tr.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimiser steps (-1: epochs)")
    tr.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help=f"peak learning rate (default: {DEFAULT_LEARNING_RATE['lora']:g} with --lora, "
        f"{DEFAULT_LEARNING_RATE['full']:g} for full fine-tuning)",
    )
    tr.add_argument("--lr-scheduler", choices=SCHEDULERS, default="cosine", help="learning-rate schedule")
    tr.add_argument(
        "--warmup", type=_non_negative_float, default=0.03, help="warmup: a fraction of the steps if < 1, else steps"
    )
    tr.add_argument("--weight-decay", type=_non_negative_float, default=0.0, help="AdamW weight decay")
    tr.add_argument("--max-grad-norm", type=_non_negative_float, default=1.0, help="gradient clipping (0: off)")
    tr.add_argument("--per-device-train-batch-size", type=_positive_int, default=2, help="sequences per device")
    tr.add_argument("--per-device-eval-batch-size", type=_positive_int, default=2, help="sequences per device")
    tr.add_argument("--gradient-accumulation-steps", type=_positive_int, default=4, help="micro-batches per step")
    tr.add_argument("--max-length", type=_positive_int, default=2048, help="tokens per (packed) sequence")
    tr.add_argument(
        "--packing",
        action=_BoolAction,
        default=True,
        help="pack whole conversations best-fit into --max-length rows, padding-free",
    )
    tr.add_argument(
        "--packing-strategy",
        choices=PACKING_STRATEGIES,
        default="bfd_split",
        help="TRL's packing: bfd_split splits a conversation longer than --max-length into more rows (no token "
        "lost), bfd drops its overflow",
    )
    tr.add_argument(
        "--assistant-only-loss",
        action=_BoolAction,
        default=None,
        help="train on the assistant turns only (the chat template marks them with {%% generation %%}; TRL's "
        "training template where the model's own lacks the marks). Unset: on where the template can be marked "
        "(lower held-out loss on the answers: docs/sft.md), else every token, said in one line",
    )
    tr.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 on bf16 GPUs, fp16 on older GPUs, fp32 on CPU",
    )
    tr.add_argument(
        "--gradient-checkpointing",
        action=_BoolAction,
        default=False,
        help="recompute activations in backward (less memory, ~30%% slower)",
    )
    tr.add_argument(
        "--attn-implementation",
        choices=ATTENTION,
        default="auto",
        help="auto: the fastest that is really available: flash_attention_2 (flash_attn package), else the "
        "kernels package's hub flash-attention, else flex_attention on a CUDA GPU; sdpa otherwise",
    )
    tr.add_argument("--seed", type=int, default=42, help="random seed (model init of LoRA, data order)")
    tr.add_argument("--logging-steps", type=_positive_int, default=10, help="log metrics every N steps")
    tr.add_argument("--eval-steps", type=int, default=0, help="also evaluate every N steps (0: only at the end)")
    tr.add_argument("--dataset-num-proc", type=int, default=0, help="tokenisation processes (0: automatic)")

    lo = p.add_argument_group("LoRA")
    lo.add_argument("--lora", action=_BoolAction, default=False, help="train LoRA adapters (merged at the end)")
    lo.add_argument("--lora-r", type=_positive_int, default=16, help="LoRA rank")
    lo.add_argument("--lora-alpha", type=_positive_float, default=32.0, help="LoRA alpha (scaling = alpha / r)")
    lo.add_argument("--lora-dropout", type=_dropout, default=0.05, help="LoRA dropout")
    lo.add_argument(
        "--lora-target-modules",
        default=PHI3_LORA_TARGETS,
        help="comma-separated module names, or all-linear",
    )

    ds = p.add_argument_group("distributed (multi-GPU / multi-node)")
    ds.add_argument("--deepspeed", type=Path, default=None, help="DeepSpeed JSON config (needs deepspeed installed)")
    ds.add_argument("--fsdp", default="", help='FSDP mode for transformers, e.g. "full_shard auto_wrap"')
    ds.add_argument("--fsdp-config", type=Path, default=None, help="FSDP JSON config file")
    ds.add_argument(
        "--ddp-timeout",
        type=_positive_int,
        default=1800,
        help="seconds a rank waits for the others in one collective (start-up included) before it gives up",
    )
    return p


# ---------------------------------------------------------------------------------------------------- data checks


@dataclass
class DataSummary:
    path: Path
    rows: int
    normalised: Path


def _jsonl_files(path: Path, option: str) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
        if not files:
            raise UserInputError(f"{option} {path}: folder has no *.jsonl files; expected chat JSONL")
        return files
    raise UserInputError(f"{option} {path}: no such file or folder")


def _check_row(row: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(row, dict):
        raise UserInputError(f"{where}: expected a JSON object with a 'messages' list, got {type(row).__name__}")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise UserInputError(f"{where}: messages: expected a non-empty list of {{role, content}} objects")
    clean: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UserInputError(f"{where}: messages[{i}]: expected an object with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise UserInputError(f"{where}: messages[{i}].role: expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise UserInputError(f"{where}: messages[{i}].content: expected a string, got {type(content).__name__}")
        clean.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in clean):
        raise UserInputError(f"{where}: messages: expected at least one assistant message (nothing to learn)")
    return clean


def _iter_rows(files: list[Path]) -> Iterator[tuple[str, list[dict[str, str]]]]:
    for file in files:
        with file.open("r", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{file}:{number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserInputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
                yield where, _check_row(row, where)


def check_and_normalise(path: Path, option: str, out: Path) -> DataSummary:
    """Validate every row (one-line error on the first bad one) and write ``{"messages": [...]}`` rows to ``out``."""
    files = _jsonl_files(path, option)
    rows = 0
    try:
        with out.open("w", encoding="utf-8") as sink:
            for _where, messages in _iter_rows(files):
                sink.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
                rows += 1
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{option} {path}: not UTF-8 text ({exc.reason})") from None
    if rows == 0:
        raise UserInputError(f'{option} {path}: no rows; expected JSONL with one {{"messages": [...]}} per line')
    return DataSummary(path=path, rows=rows, normalised=out)


def check_output_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UserInputError(f"--output-dir {path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise UserInputError(f"--output-dir {path}: folder is not empty; expected an empty or new folder")


def hub_offline() -> bool:
    """The offline switches, read at call time: libraries cache them at import, which a long process outlives."""
    return any(
        os.environ.get(k, "").upper() in {"1", "ON", "YES", "TRUE"} for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def check_model_source(name: str) -> None:
    path = Path(name)
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise UserInputError(f"--model-name-or-path {name}: expected a model folder with config.json")
        return
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep in name.replace("/", "")
    if looks_local or not HUB_ID.match(name):
        raise UserInputError(f"--model-name-or-path {name}: no such folder, and not a Hugging Face hub id")


# ------------------------------------------------------------------------------------------------------- hardware


def resolve_precision(choice: str) -> str:
    import torch

    cuda = torch.cuda.is_available()
    if choice == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if choice == "fp16" and not cuda:
        raise UserInputError("--precision fp16: needs a CUDA GPU; use bf16 or fp32 on CPU")
    return choice


@dataclass(frozen=True)
class Attention:
    """The attention implementation to load (a transformers name or a hub kernel id) and why it was chosen."""

    implementation: str
    reason: str

    @property
    def line(self) -> str:
        return f"attention: {self.implementation} ({self.reason})"


def flash_kernel_id() -> str:
    """The hub flash-attention kernel transformers itself uses for flash_attention_2 without flash_attn."""
    from transformers.modeling_flash_attention_utils import FLASH_ATTN_KERNEL_FALLBACK

    return FLASH_ATTN_KERNEL_FALLBACK["flash_attention_2"]


def choose_attention(
    choice: str,
    *,
    cuda_capability: int | None,
    flash_attn_installed: bool,
    flex_available: bool,
    load_kernel: Any,
    kernel_id: str,
) -> Attention:
    """Pure choice of the attention implementation. ``cuda_capability``: the GPU's major compute capability, None
    without CUDA; ``load_kernel()`` fetches the hub kernel and returns None, or a one-line reason it cannot.

    ``auto`` takes the fastest one that is really available: per-conversation (varlen) flash-attention from the
    flash_attn package or the hub kernel, then flex_attention (a document mask, masked blocks skipped), then sdpa
    (a dense block-diagonal mask over the packed row). An explicit choice that cannot run is the user's mistake."""
    option = f"--attn-implementation {choice}"
    if choice in ("sdpa", "eager"):
        return Attention(choice, "as asked")
    if choice == "flex_attention":
        if cuda_capability is None:
            raise UserInputError(f"{option}: PyTorch's flex_attention has no backward pass on CPU; use sdpa or eager")
        if not flex_available:
            raise UserInputError(f"{option}: this torch has no torch.nn.attention.flex_attention")
        return Attention(choice, "as asked")
    if choice == "flash_attention_2":
        if not flash_attn_installed:
            raise UserInputError(f"{option}: the flash-attn package is not installed (try kernels)")
        return Attention(choice, "as asked")
    if choice == "kernels":
        if cuda_capability is None or cuda_capability < 8:
            raise UserInputError(f"{option}: the hub flash-attention kernel needs a CUDA GPU of compute capability 8+")
        problem = load_kernel()
        if problem:
            raise UserInputError(f"{option}: cannot load {kernel_id} ({problem})")
        return Attention(kernel_id, "as asked: hub flash-attention kernel, per conversation")
    # auto
    if cuda_capability is None:
        return Attention("sdpa", "auto: no CUDA GPU; flash-attention kernels need one, flex_attention has no CPU "
                                 "backward")  # fmt: skip
    if cuda_capability < 8:
        return Attention("sdpa", f"auto: GPU compute capability {cuda_capability}.x; flash-attention needs 8+")
    if flash_attn_installed:
        return Attention("flash_attention_2", "auto: the flash_attn package, per conversation")
    problem = load_kernel()
    if not problem:
        return Attention(kernel_id, "auto: hub flash-attention kernel, per conversation")
    if flex_available:
        return Attention("flex_attention", f"auto: {kernel_id} not available ({problem}); flex with a document mask")
    return Attention("sdpa", f"auto: {kernel_id} not available ({problem}); no flex_attention in this torch")


def _load_flash_kernel(kernel_id: str) -> str | None:
    """Fetch and register the hub kernel (downloads unless cached); None when it loaded, else the first line of why."""
    import importlib.util

    if importlib.util.find_spec("kernels") is None:
        return "the kernels package is not installed"
    try:
        from transformers.integrations.hub_kernels import load_and_register_attn_kernel

        load_and_register_attn_kernel(kernel_id)
    except Exception as exc:  # noqa: BLE001 - offline, no build for this GPU/torch, hub errors: every one means "no"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{type(exc).__name__}: {text[:160]}"
    return None


def resolve_attention(choice: str) -> Attention:
    import importlib.util

    import torch

    capability = torch.cuda.get_device_capability()[0] if torch.cuda.is_available() else None
    kernel_id = flash_kernel_id()
    return choose_attention(
        choice,
        cuda_capability=capability,
        flash_attn_installed=importlib.util.find_spec("flash_attn") is not None,
        flex_available=importlib.util.find_spec("torch.nn.attention.flex_attention") is not None,
        load_kernel=lambda: _load_flash_kernel(kernel_id),
        kernel_id=kernel_id,
    )


# Most widely available last: where ranks disagree (one could fetch the hub kernel, another not), all take the last.
_ATTENTION_ORDER = ("flash_attention_2", "kernel", "flex_attention", "sdpa", "eager")


def agree_attention(ranks: Ranks, attention: Attention) -> Attention:
    """One attention implementation for every rank: the most widely available of those the ranks resolved."""
    seen = ranks.gather(attention.implementation)
    if len(set(seen)) == 1:
        return attention

    def rank_of(name: str) -> int:
        return _ATTENTION_ORDER.index(name if name in _ATTENTION_ORDER else "kernel")

    chosen = max(seen, key=rank_of)
    return Attention(chosen, f"ranks resolved {', '.join(sorted(set(seen)))}: all take the most widely available")


def dense_mask_micro_batches(args: argparse.Namespace, attention: str, cuda: bool) -> tuple[int, int] | None:
    """With packing, a micro-batch is one flattened row; sdpa and eager attend over it with a dense block-diagonal
    mask (every block computed, the masked ones too), so two packed rows cost ~2x the attention of one. On a GPU,
    train one packed row per micro-batch and accumulate more (same global batch). Returns the new
    (per-device batch, accumulation), or None to keep the options as given."""
    if not (cuda and args.packing and attention in ("sdpa", "eager") and args.per_device_train_batch_size > 1):
        return None
    return 1, args.per_device_train_batch_size * args.gradient_accumulation_steps


# -------------------------------------------------------------------------------------------------- distributed


class Ranks:
    """The process group of a multi-process launch (a no-op for one process).

    torchrun, ``accelerate launch`` and Azure ML's ``distribution: pytorch`` all export ``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` (Azure ML: per node), ``MASTER_ADDR`` and ``MASTER_PORT``. We create the
    default process group ourselves (accelerate and transformers then use it as it is), so that input checks can be
    agreed on before the model is loaded: NCCL for CUDA tensors with gloo for CPU objects on GPUs, gloo on CPUs.
    """

    def __init__(self) -> None:
        self.rank, self.world_size = _rank(), _world_size()
        self.local_rank = _env_int("LOCAL_RANK", 0)
        self.local_world_size = _env_int("LOCAL_WORLD_SIZE", self.world_size)
        self.backend = "none"
        self._dist: Any = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def nodes(self) -> int:
        return max(self.world_size // max(self.local_world_size, 1), 1)

    def start(self, timeout_s: int) -> None:
        if not self.distributed:
            return
        from datetime import timedelta

        import torch
        import torch.distributed as dist

        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
        if missing:
            raise UserInputError(
                f"WORLD_SIZE={self.world_size} but {' and '.join(missing)} not set; launch with torchrun, "
                "accelerate launch or Azure ML's distribution: pytorch"
            )
        if torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank % torch.cuda.device_count())
            self.backend = "cuda:nccl,cpu:gloo"
        else:
            self.backend = "gloo"
        # The launcher's signal to stop (a peer failed): one line, then the finally blocks (MLflow run: FAILED).
        signal.signal(signal.SIGTERM, _stopped_by_launcher)
        dist.init_process_group(backend=self.backend, timeout=timedelta(seconds=timeout_s))
        self._dist = dist

    def agree(self, error: str | None) -> None:
        """Every rank reports its input error (or none); if any rank has one, all end with exit 2 and rank 0
        prints the first one, naming the rank that saw it."""
        if self._dist is None:
            if error is not None:
                raise UserInputError(error)
            return
        reports: list[str | None] = [None] * self.world_size
        self._dist.all_gather_object(reports, error)
        failed = [(rank, text) for rank, text in enumerate(reports) if text is not None]
        if not failed:
            return
        rank, text = failed[0]
        if self.rank == 0:
            _say_error(text if rank == 0 else f"{text} (seen by rank {rank} of {self.world_size})")
        global _REPORTED
        _REPORTED = True
        self._dist.barrier()  # rank 0 has printed before any rank exits (the launcher may stop the rest)
        raise RunStopped(None, EXIT_USER_ERROR)

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order; ``[value]`` for one process."""
        if self._dist is None:
            return [value]
        values: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(values, value)
        return values

    def checked(self, step: Any) -> Any:
        """Run ``step()`` on every rank; a UserInputError on any rank stops all of them (see ``agree``)."""
        try:
            result, error = step(), None
        except UserInputError as exc:
            result, error = None, str(exc)
        self.agree(error)
        return result

    def close(self) -> None:
        if self._dist is not None and self._dist.is_initialized():
            self._dist.destroy_process_group()


def _stopped_by_launcher(signum: int, _frame: Any) -> None:
    if _REPORTED:
        sys.exit(128 + signum)
    raise RunStopped(
        f"rank {_rank()} of {_world_size()}: stopped by the launcher (SIGTERM), which ends every rank when one "
        "fails: the failing rank's exit code and log have the cause",
        128 + signum,
    )


def _peer_failure(exc: BaseException) -> str:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return (
        f"rank {_rank()} of {_world_size()}: lost the other ranks ({type(exc).__name__}: {first[:200]}); "
        "another rank failed or was stopped: its exit code and log have the cause"
    )


def check_deepspeed_config(path: Path, args: argparse.Namespace, world_size: int, precision: str) -> dict:
    """Read a DeepSpeed JSON config and check that it agrees with our options (``"auto"`` always agrees: the
    transformers integration fills it in from ours)."""
    import importlib.util

    where = f"--deepspeed {path}"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError:
        raise UserInputError(f"{where}: not UTF-8 text") from None
    if not isinstance(config, dict):
        raise UserInputError(f"{where}: expected a JSON object (a DeepSpeed config)")
    zero = config.get("zero_optimization", {})
    if not isinstance(zero, dict):
        raise UserInputError(f"{where}: zero_optimization: expected an object")
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3) or isinstance(stage, bool):
        raise UserInputError(f"{where}: zero_optimization.stage: expected 0, 1, 2 or 3, got {stage!r}")
    for key, stages in (("offload_optimizer", (1, 2, 3)), ("offload_param", (3,))):
        offload = zero.get(key)
        if offload is None:
            continue
        device = offload.get("device", "none") if isinstance(offload, dict) else offload
        if device not in ("none", "cpu", "nvme"):
            raise UserInputError(f"{where}: zero_optimization.{key}.device: expected none, cpu or nvme, got {device!r}")
        if device != "none" and stage not in stages:
            wanted = " or ".join(str(s) for s in stages)
            raise UserInputError(f"{where}: zero_optimization.{key} needs stage {wanted}, got stage {stage}")
    global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * world_size
    for key, ours, option in (
        ("train_micro_batch_size_per_gpu", args.per_device_train_batch_size, "--per-device-train-batch-size"),
        ("gradient_accumulation_steps", args.gradient_accumulation_steps, "--gradient-accumulation-steps"),
        ("train_batch_size", global_batch, f"per-device x accumulation x world size {world_size}"),
    ):
        value = config.get(key, "auto")
        if value != "auto" and value != ours:
            raise UserInputError(f"{where}: {key} is {value!r} but {option} gives {ours}; use \"auto\" or {ours}")
    for key, wanted in (("fp16", "fp16"), ("bf16", "bf16")):
        enabled = config.get(key, {}).get("enabled", "auto") if isinstance(config.get(key), dict) else "auto"
        if enabled not in ("auto", False) and precision != wanted:
            raise UserInputError(f"{where}: {key}.enabled is {enabled!r} but the precision is {precision}")
    if importlib.util.find_spec("deepspeed") is None:
        raise UserInputError(
            f"{where}: the deepspeed package is not installed; add it to environments/finetune-sft/conda.yaml"
        )
    return config


# --------------------------------------------------------------------------------------------------- model / data


def load_tokenizer(name: str):  # noqa: ANN201 - transformers tokenizer
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=hub_offline())
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"--model-name-or-path {name}: cannot load a tokenizer ({first})") from None
    if not getattr(tokenizer, "chat_template", None):
        raise UserInputError(f"--model-name-or-path {name}: tokenizer has no chat template; expected a chat model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def load_model(name: str, precision: str, attention: str):  # noqa: ANN201 - transformers model
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=dtype, attn_implementation=attention, local_files_only=hub_offline()
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"--model-name-or-path {name}: cannot load the model ({first})") from None
    model.config.use_cache = False
    return model


def training_chat_template(tokenizer: Any) -> str:
    """A chat template that marks the assistant's output with ``{% generation %}`` (what assistant-only loss needs):
    the tokenizer's own when it has the marks, else TRL's training version of it (TRL ships one for Phi-3, among
    others: trl/chat_templates/phi3_training.jinja). It renders the same text as the original."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if isinstance(template, str) and has_generation_markers(template):
        return template
    try:
        training = get_training_chat_template(tokenizer)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(
            f"--assistant-only-loss: the chat template of {tokenizer.name_or_path} does not mark assistant turns "
            f"with {{% generation %}} and TRL has no training version of it ({first[:200]})"
        ) from None
    return training or template


def loss_template(tokenizer: Any, assistant_only: bool | None) -> tuple[str | None, str]:
    """The training chat template for ``--assistant-only-loss`` (None: loss on every token) and what the loss is
    on, in words. Unset (None) means on where the template can be marked, else every token (said in the words);
    asked for explicitly, a template that cannot be marked is the user's mistake."""
    if assistant_only is False:
        return None, "every token"
    try:
        return training_chat_template(tokenizer), "assistant turns only"
    except UserInputError as error:
        if assistant_only:
            raise
        return None, f"every token (assistant-only by default, but {str(error).split(': ', 1)[-1]})"


def tokenize(tokenizer: Any, messages: list[dict[str, str]], template: str | None) -> dict[str, list[int]]:
    """One conversation through the chat template: ``input_ids``, and with a training ``template`` also
    ``assistant_masks`` (1 on the tokens of the assistant turns, their end-of-turn token included)."""
    if template is None:
        return {"input_ids": tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]}
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, chat_template=template, return_assistant_tokens_mask=True
    )
    return {"input_ids": out["input_ids"], "assistant_masks": out["assistant_masks"]}


def tokenize_dataset(summary: DataSummary, tokenizer: Any, cache_dir: Path, num_proc: int,
                     template: str | None = None):  # noqa: ANN201 - datasets.Dataset  # fmt: skip
    """Apply the chat template to ``messages`` and tokenise; adds a ``length`` column (and ``assistant_masks``,
    from which TRL builds labels that are -100 outside the assistant turns, when ``template`` is given)."""
    from datasets import load_dataset

    dataset = load_dataset("json", data_files=str(summary.normalised), split="train", cache_dir=str(cache_dir))

    def encode(batch: dict[str, list]) -> dict[str, list]:
        rows = [tokenize(tokenizer, messages, template) for messages in batch["messages"]]
        columns = {key: [row[key] for row in rows] for key in rows[0]}
        return {**columns, "length": [len(row["input_ids"]) for row in rows]}

    procs = num_proc or (min(8, os.cpu_count() or 1) if summary.rows >= 20000 else None)
    return dataset.map(encode, batched=True, remove_columns=["messages"], num_proc=procs, desc="Tokenising")


def overflow_tokens(lengths: Sequence[int], max_length: int) -> int:
    """Tokens beyond ``max_length`` in conversations longer than it (what truncation would drop)."""
    return sum(n - max_length for n in lengths if n > max_length)


def check_lengths(dataset: Any, args: argparse.Namespace, option: str, path: Path) -> None:
    lengths = dataset["length"]
    max_length = args.max_length
    shortest = min(lengths)
    if shortest > max_length:
        raise UserInputError(
            f"--max-length {max_length}: shorter than every example in {option} {path} "
            f"(shortest is {shortest} tokens); expected at least {shortest}"
        )
    over = sum(1 for n in lengths if n > max_length)
    if over:
        split = args.packing and args.packing_strategy == "bfd_split"
        fate = "split into more rows (bfd_split: no token lost)" if split else "truncated"
        log(f"{over} of {len(lengths)} examples in {path} are longer than --max-length {max_length}: {fate}")


def truncation_report(tokens_in: int, tokens_trained: int) -> tuple[float, str]:
    """The share of the input's tokens that packing or truncation left out, and the log line saying so."""
    lost = max(tokens_in - tokens_trained, 0)
    share = lost / tokens_in if tokens_in else 0.0
    return share, f"truncated tokens: {lost} of {tokens_in} ({share:.2%})"


def dataset_tokens(dataset: Any) -> int:
    """Total tokens in a (tokenised or packed) dataset's ``input_ids``, read from its Arrow table."""
    import pyarrow.compute as pc

    column = dataset.with_format("arrow")["input_ids"]
    return int(pc.sum(pc.list_value_length(column)).as_py() or 0)


# ------------------------------------------------------------------------------------------------------- tracking


class _Tracker:
    """Metrics to MLflow (when MLFLOW_TRACKING_URI is set or a run is active) and to a JSON history."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and _is_main_process()
        self.history: list[dict[str, float]] = []
        self._mlflow = None
        self._own_run = False
        if self.enabled:
            import logging

            for noisy in ("mlflow.store.db.utils", "alembic"):  # sqlite store set-up chatter, not progress
                logging.getLogger(noisy).setLevel(logging.WARNING)
            import mlflow
            from mlflow.exceptions import MlflowException

            self._mlflow = mlflow
            if mlflow.active_run() is None:
                try:
                    mlflow.start_run()  # on Azure ML this attaches to the job's run (MLFLOW_RUN_ID)
                except MlflowException as exc:
                    first = str(exc).strip().splitlines()[0][:300]
                    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
                    raise UserInputError(f"MLFLOW_TRACKING_URI={uri}: cannot start an MLflow run ({first})") from None
                self._own_run = True

    @property
    def run_id(self) -> str | None:
        run = self._mlflow.active_run() if self._mlflow else None
        return run.info.run_id if run else None

    def params(self, params: dict[str, Any]) -> None:
        if self._mlflow:
            self._mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def metrics(self, metrics: dict[str, float], step: int) -> None:
        numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
        if not numeric:
            return
        self.history.append({"step": step, **numeric})
        if self._mlflow:
            self._mlflow.log_metrics(numeric, step=step)

    def close(self, ok: bool) -> None:
        if self._mlflow and self._own_run:
            self._mlflow.end_run(status="FINISHED" if ok else "FAILED")


def _progress_callback(tracker: _Tracker):  # noqa: ANN202 - a transformers TrainerCallback
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One line per logging step (works in Azure ML's plain-text logs) and metrics to the tracker."""

        def __init__(self) -> None:
            self.start = time.monotonic()
            self.trainer: Any = None  # set once the trainer exists: shows how the model was wrapped
            self.first_step_end: float | None = None

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):  # noqa: ANN001, ANN201
            self.start = time.monotonic()
            if train_dataloader is not None:
                for line in scaling_lines(args, len(train_dataloader)):
                    log(line)
            if self.trainer is not None:
                log(f"parallelism: {parallelism(self.trainer)}")
            log(f"training: {state.max_steps} steps")

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if state.global_step == 1:  # the first step carries the warm-up (allocation, kernels): the ETA skips it
                self.first_step_end = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
            if not state.is_world_process_zero or not logs:
                return
            if "train_runtime" in logs:  # the end-of-training summary: its train_loss is the mean over all steps
                named = {("train_loss_mean" if k == "train_loss" else k): v for k, v in logs.items()}
            else:
                named = {(k if k.startswith(("eval_", "train_")) else f"train_{k}"): v for k, v in logs.items()}
            tracker.metrics({k: v for k, v in named.items() if k != "train_epoch"}, step=state.global_step)
            now = time.monotonic()
            elapsed = now - self.start
            left = max(state.max_steps - state.global_step, 0)
            if state.global_step > 1 and self.first_step_end is not None:  # the steady rate, after the warm-up step
                eta = f"{(now - self.first_step_end) / (state.global_step - 1) * left:.0f}s"
            else:
                eta = "0s" if not left else "(after step 2)"
            shown = " ".join(f"{k}={v:.4g}" for k, v in logs.items() if isinstance(v, int | float))
            log(f"step {state.global_step}/{state.max_steps} {shown} elapsed={elapsed:.0f}s eta={eta}")

    return Progress()


def scaling_lines(args: Any, batches_per_rank: int) -> list[str]:
    """What the launch means for the schedule: world size, per-device and global batch, steps per epoch.
    ``batches_per_rank`` is the length of this rank's (sharded) dataloader, i.e. micro-batches per epoch."""
    world = args.world_size
    accumulation = args.gradient_accumulation_steps
    global_batch = args.per_device_train_batch_size * accumulation * world
    steps = max(batches_per_rank // accumulation + int(batches_per_rank % accumulation > 0), 1)  # as transformers
    mode = str(args.parallel_mode).rsplit(".", 1)[-1]
    kind = str(getattr(args.distributed_state, "distributed_type", "NO")).rsplit(".", 1)[-1]
    import torch.distributed as dist

    backend = str(dist.get_backend()) if world > 1 and dist.is_initialized() else "none"
    nodes = Ranks().nodes
    return [
        f"world size {world} ({nodes} node(s) x {world // nodes} process(es); {mode}, {kind}, backend {backend})",
        f"batch: per-device {args.per_device_train_batch_size} x accumulation {accumulation} x world size {world} "
        f"= global batch {global_batch} sequences",
        f"steps per epoch: {steps} ({batches_per_rank} micro-batches per rank per epoch)",
    ]


def parallelism(trainer: Any) -> str:
    """How the training loop wrapped the model: DDP, FSDP (sharded parameters), DeepSpeed, or a single process."""
    wrapped = trainer.model_wrapped
    name = type(wrapped).__name__
    if trainer.is_deepspeed_enabled:
        return f"DeepSpeed ZeRO stage {trainer.accelerator.state.deepspeed_plugin.zero_stage} ({name})"
    if trainer.is_fsdp_enabled:
        plugin = trainer.accelerator.state.fsdp_plugin
        return f"FSDP{getattr(plugin, 'fsdp_version', 1)} ({name}, {str(plugin.sharding_strategy).rsplit('.', 1)[-1]})"
    if name == "DistributedDataParallel":
        return "DDP (DistributedDataParallel: gradients all-reduced every step)"
    return f"none ({name}, one process)"


# ------------------------------------------------------------------------------------------------------ training


def build_sft_config(args: argparse.Namespace, precision: str, out_dir: Path, has_eval: bool):  # noqa: ANN201
    import torch
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    eval_steps = args.eval_steps if has_eval and args.eval_steps > 0 else None
    return SFTConfig(
        output_dir=str(out_dir),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        lr_scheduler_type=args.lr_scheduler,
        warmup_steps=args.warmup,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        max_length=args.max_length,
        packing=args.packing,
        packing_strategy=args.packing_strategy,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # transformers 5 renamed gradient_checkpointing to activation_checkpointing; TRL still defaults the old
        # name to True. Set both explicitly.
        gradient_checkpointing=args.gradient_checkpointing,
        activation_checkpointing=args.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if args.gradient_checkpointing else None,
        eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps,
        logging_steps=args.logging_steps,
        logging_first_step=True,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        data_seed=args.seed,
        disable_tqdm=not sys.stderr.isatty(),
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        # Without CUDA, accelerate only goes multi-process (DistributedType.MULTI_CPU, DDP over gloo) when told so;
        # without it every rank would train the whole dataset on its own, with no gradient sync.
        use_cpu=not cuda,
        ddp_timeout=args.ddp_timeout,
        ddp_find_unused_parameters=False,  # every trainable parameter (full or LoRA) gets a gradient each step
        deepspeed=str(args.deepspeed) if args.deepspeed else None,
        fsdp=args.fsdp or "",
        fsdp_config=str(args.fsdp_config) if args.fsdp_config else None,
    )


def lora_config(args: argparse.Namespace):  # noqa: ANN201 - peft.LoraConfig
    from peft import LoraConfig

    targets: str | list[str] = args.lora_target_modules.strip()
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
        if not targets:
            raise UserInputError("--lora-target-modules: expected module names separated by commas, or all-linear")
    return LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def check_lora_targets(model: Any, args: argparse.Namespace) -> None:
    targets = args.lora_target_modules.strip()
    if targets == "all-linear":
        return
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t.strip() for t in targets.split(",") if t.strip() and t.strip() not in names]
    if missing:
        known = sorted(n for n in names if "proj" in n or "fc" in n)
        raise UserInputError(
            f"--lora-target-modules: {', '.join(missing)} not in the model; expected some of {', '.join(known)}"
        )


def ensure_merged(model: Any) -> Any:
    """Refuse to save LoRA adapters unmerged: MLflow would reload such a model with random base weights."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        raise RuntimeError("refusing to save an unmerged PEFT model: call merge_and_unload() first")
    leftovers = [name for name, _ in model.named_parameters() if "lora_" in name]
    if leftovers:
        raise RuntimeError(f"refusing to save: LoRA parameters left in the model ({leftovers[0]} ...)")
    return model


def final_model(args: argparse.Namespace, checkpoint: Path, precision: str):  # noqa: ANN201
    """Reload the trained weights on CPU from the trainer's final save (full weights gathered from every rank,
    also under DeepSpeed/FSDP) and, for LoRA, merge the adapters into a fresh copy of the base model."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    if args.lora:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, dtype=dtype, attn_implementation="sdpa")
        model = PeftModel.from_pretrained(base, str(checkpoint)).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=dtype, attn_implementation="sdpa")
    model.config.use_cache = True
    model.name_or_path = model.config._name_or_path = args.model_name_or_path  # MLflow's source_model_name
    return ensure_merged(model)


def save_mlflow_model(model: Any, tokenizer: Any, out_dir: Path) -> None:
    """Save as an MLflow transformers model with the OpenAI-style chat signature, then verify the saved weights."""
    from importlib.metadata import PackageNotFoundError, version

    import mlflow.transformers

    requirements = []
    for package in SERVING_PACKAGES:
        try:
            requirements.append(f"{package}=={version(package).split('+')[0]}")
        except PackageNotFoundError:
            requirements.append(package)
    requirements.extend(AZURE_SERVING_PACKAGES)
    tokenizer.padding_side = "left"
    if out_dir.is_dir():
        out_dir.rmdir()  # empty (checked up front); MLflow wants to create it
    mlflow.transformers.save_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        path=str(out_dir),
        task="llm/v1/chat",
        pip_requirements=requirements,
    )
    verify_saved_weights(model, out_dir)


def verify_saved_weights(model: Any, out_dir: Path, max_tensors: int = 4) -> None:
    """Compare a few saved tensors with the in-memory (merged) model: a cheap guard against saving the wrong
    weights (e.g. an unmerged adapter or a re-initialised base)."""
    import torch
    from safetensors import safe_open

    files = sorted(out_dir.rglob("*.safetensors"))
    if not files:
        raise RuntimeError(f"no safetensors weights under {out_dir}")
    state = model.state_dict()
    checked = 0
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                if key in state and ("proj" in key or checked == 0):
                    if not torch.equal(handle.get_tensor(key), state[key].detach().cpu()):
                        raise RuntimeError(f"saved tensor {key} in {file} differs from the trained model")
                    checked += 1
                if checked >= max_tensors:
                    return
    if checked == 0:
        raise RuntimeError(f"saved weights under {out_dir} share no tensor names with the trained model")


def loss_warning(losses: Sequence[float], args: argparse.Namespace, min_drop: float = 0.01) -> str | None:
    """A one-line warning when the logged training loss did not fall by ``min_drop`` (relative) from the first
    log to the mean of the last few, else None. Such a model is saved all the same: it is the base model, nearly."""
    if len(losses) < 2:
        return None
    first, last = losses[0], sum(losses[-3:]) / len(losses[-3:])
    if last < first * (1 - min_drop):
        return None
    hint = "LoRA adapters start at zero and usually need 1e-4 to 3e-4" if args.lora else "check --learning-rate"
    return (f"the training loss did not fall ({first:.4g} -> {last:.4g} over {len(losses)} logs) at learning rate "
            f"{args.learning_rate:g}; {hint}; more steps may help")  # fmt: skip


def train(
    args: argparse.Namespace,
    work: Path,
    ranks: Ranks,
    tracker: _Tracker,
    train_rows: DataSummary,
    eval_rows: DataSummary | None,
) -> dict[str, float]:
    """Tokenise, train, evaluate, merge and save; returns the final metrics."""
    import logging

    import datasets
    import transformers
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    transformers.logging.set_verbosity_warning()
    if not sys.stderr.isatty():
        transformers.utils.logging.disable_progress_bar()
    logging.getLogger("mlflow.transformers").setLevel(logging.ERROR)  # model card / licence lookups: noise
    # AZURE_SERVING_PACKAGES are pinned for Azure's serving image, not installed here: MLflow's warning is noise
    logging.getLogger("mlflow.utils.requirements_utils").setLevel(logging.ERROR)
    if not sys.stderr.isatty():
        datasets.disable_progress_bars()

    attention = agree_attention(ranks, ranks.checked(lambda: resolve_attention(args.attn_implementation)))
    log(attention.line)

    def prepare() -> tuple[Any, ...]:  # everything that can still be the user's mistake, on every rank
        precision = resolve_precision(args.precision)
        if args.deepspeed:
            check_deepspeed_config(args.deepspeed, args, ranks.world_size, precision)
        packing = f"{args.packing_strategy} padding-free" if args.packing else "off"
        tokenizer = load_tokenizer(args.model_name_or_path)
        template, loss_on = loss_template(tokenizer, args.assistant_only_loss)
        log(f"precision {precision}, packing {packing}, lora {args.lora} (learning rate {args.learning_rate:g}), "
            f"loss on {loss_on}")  # fmt: skip
        cache = work / "datasets-cache"
        train_ds = tokenize_dataset(train_rows, tokenizer, cache, args.dataset_num_proc, template)
        check_lengths(train_ds, args, "--train-file", args.train_file)
        eval_ds = None
        if eval_rows is not None:
            eval_ds = tokenize_dataset(eval_rows, tokenizer, cache, args.dataset_num_proc, template)
            check_lengths(eval_ds, args, "--eval-file", args.eval_file)
        log(f"data: {train_rows.rows} training and {eval_rows.rows if eval_rows else 0} evaluation conversations")
        model = load_model(args.model_name_or_path, precision, attention.implementation)
        peft_config = None
        if args.lora:
            check_lora_targets(model, args)
            peft_config = lora_config(args)
        return precision, tokenizer, train_ds, eval_ds, model, peft_config, loss_on

    precision, tokenizer, train_ds, eval_ds, model, peft_config, loss_on = ranks.checked(prepare)
    import torch

    resized = dense_mask_micro_batches(args, attention.implementation, torch.cuda.is_available())
    if resized:
        log(f"{attention.implementation} with packing: per-device batch {args.per_device_train_batch_size} x "
            f"accumulation {args.gradient_accumulation_steps} becomes {resized[0]} x {resized[1]} (same global batch; "
            "one packed row per micro-batch keeps the dense attention mask small)")  # fmt: skip
        args.per_device_train_batch_size, args.gradient_accumulation_steps = resized
    config = build_sft_config(args, precision, work.parent / "trainer" if ranks.distributed else work / "trainer",
                              eval_ds is not None)  # fmt: skip
    tracker.params(
        {
            **{k: v for k, v in vars(args).items()},
            "resolved_precision": precision,
            "resolved_attention": attention.implementation,
            "resolved_loss_on": loss_on,
            "train_rows": train_rows.rows,
            "world_size": ranks.world_size,
        }
    )
    progress = _progress_callback(tracker)

    def make_trainer() -> Any:
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=train_ds.remove_columns(["length"]),
            eval_dataset=eval_ds.remove_columns(["length"]) if eval_ds is not None else None,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[progress],
        )
        if args.fsdp and not trainer.is_fsdp_enabled:
            # accelerate enables FSDP only for GPU-class multi-process launches; on CPU (MULTI_CPU) it drops the
            # plugin without a word and trains plain DDP. Say so rather than pretend to shard.
            from importlib.metadata import version

            kind = str(trainer.accelerator.distributed_type).rsplit(".", 1)[-1]
            raise UserInputError(
                f"--fsdp {args.fsdp!r}: accelerate {version('accelerate')} does not enable FSDP for this launch "
                f"({kind}, world size {ranks.world_size}); FSDP needs CUDA GPUs and more than one process"
            )
        return trainer

    trainer = ranks.checked(make_trainer)
    progress.trainer = trainer
    share, line = truncation_report(sum(train_ds["length"]), dataset_tokens(trainer.train_dataset))
    log(line + f" [{'packing ' + args.packing_strategy if args.packing else 'no packing'}]")
    tracker.metrics({"truncated_token_share": share}, step=0)
    trainer.remove_callback(PrinterCallback)  # our Progress callback prints one line per log instead
    result = trainer.train()
    metrics: dict[str, float] = dict(result.metrics)
    metrics["truncated_token_share"] = share
    warning = loss_warning([row["train_loss"] for row in tracker.history if "train_loss" in row], args)
    if warning:
        log(f"WARNING: {warning}")
    if eval_ds is not None:
        eval_metrics = trainer.evaluate()  # logged through the callback
        metrics.update(eval_metrics)
        if "eval_loss" in eval_metrics:
            metrics["eval_perplexity"] = math.exp(min(eval_metrics["eval_loss"], 50.0))
            tracker.metrics({"eval_perplexity": metrics["eval_perplexity"]}, step=trainer.state.global_step)

    checkpoint = (work.parent if ranks.distributed else work) / "final"
    trainer.save_model(str(checkpoint))  # gathers full weights (or the adapter) to the main process
    trainer.accelerator.wait_for_everyone()
    if _is_main_process():
        del trainer, model
        merged = final_model(args, checkpoint, precision)
        save_mlflow_model(merged, tokenizer, args.output_dir)
        log(f"MLflow model (llm/v1/chat) written to {args.output_dir}")
        shown = {k: metrics[k] for k in ("train_loss", "eval_loss", "train_runtime") if k in metrics}
        log("summary: " + " ".join(f"{k}={v:.4g}" for k, v in shown.items()) + f" world_size={ranks.world_size}")
    return metrics


def _preflight(args: argparse.Namespace, work: Path) -> tuple[DataSummary, DataSummary | None]:
    """The cheap checks of options and data (no torch needed); UserInputError on the first mistake."""
    if args.max_steps == 0 or args.max_steps < -1:
        raise UserInputError(f"--max-steps {args.max_steps}: expected -1 (use --epochs) or an integer >= 1")
    if args.eval_steps < 0:
        raise UserInputError(f"--eval-steps {args.eval_steps}: expected 0 (off) or an integer >= 1")
    for option, value in (("--deepspeed", args.deepspeed), ("--fsdp-config", args.fsdp_config)):
        if value is not None and not value.is_file():
            raise UserInputError(f"{option} {value}: no such file")
    for option, value in (("--train-file", args.train_file), ("--eval-file", args.eval_file)):
        if value is not None:
            _jsonl_files(value, option)
    check_output_dir(args.output_dir)
    check_model_source(args.model_name_or_path)
    work.mkdir(parents=True, exist_ok=True)
    train_rows = check_and_normalise(args.train_file, "--train-file", work / "train.jsonl")
    eval_rows = check_and_normalise(args.eval_file, "--eval-file", work / "eval.jsonl") if args.eval_file else None
    return train_rows, eval_rows


def resolve_learning_rate(args: argparse.Namespace) -> float:
    """--learning-rate as given, else the default of the method (LoRA or full fine-tuning)."""
    if args.learning_rate is not None:
        return args.learning_rate
    return DEFAULT_LEARNING_RATE["lora" if args.lora else "full"]


def main(argv: Sequence[str] | None = None) -> int:
    global _REPORTED
    _REPORTED = False
    args = build_parser().parse_args(argv)
    args.learning_rate = resolve_learning_rate(args)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if Path(args.model_name_or_path).is_dir():
        # A local model needs no hub: without the switches MLflow's save looks the folder's name up on the hub
        # (model card, licence) and retries for ~45 s where there is no network. Set before transformers, MLflow
        # and huggingface_hub are imported (they read the switches at import).
        for switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            os.environ.setdefault(switch, "1")
    ranks = Ranks()
    tracker: _Tracker | None = None
    created_work = args.work_dir is None
    root = Path(tempfile.mkdtemp(prefix="fine-tune-")) if created_work else args.work_dir
    # Ranks of one node may share --work-dir: each gets its own scratch for the data and the dataset cache.
    work = root / f"rank-{ranks.rank}" if ranks.distributed else root
    ok = False
    try:
        if not ranks.distributed:  # one process: every row is checked before the heavy imports (fast failure)
            train_rows, eval_rows = _preflight(args, work)
        else:
            ranks.start(args.ddp_timeout)
            train_rows, eval_rows = ranks.checked(lambda: _preflight(args, work))

        def start_tracker() -> _Tracker:
            return _Tracker(enabled=bool(os.environ.get("MLFLOW_TRACKING_URI") or os.environ.get("MLFLOW_RUN_ID")))

        tracker = ranks.checked(start_tracker)
        if tracker.enabled:
            log(f"MLflow run {tracker.run_id}")
        metrics = train(args, work, ranks, tracker, train_rows, eval_rows)
        if args.metrics_json and _is_main_process():
            args.metrics_json.parent.mkdir(parents=True, exist_ok=True)
            payload = {"final": metrics, "history": tracker.history, "mlflow_run_id": tracker.run_id,
                       "world_size": ranks.world_size}  # fmt: skip
            args.metrics_json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        ok = True
    except UserInputError as error:
        fail(str(error))
    except RunStopped as stop:
        if stop.message:
            _say_error(stop.message)
        _REPORTED = True
        sys.exit(stop.code)
    except Exception as error:  # a collective failed: a peer died or was stopped; its own log has the cause
        if not ranks.distributed or not _is_distributed_error(error):
            raise
        fail(_peer_failure(error), EXIT_PEER_FAILED)
    finally:
        if tracker is not None:
            tracker.close(ok)
        if ok:
            ranks.close()
        if created_work:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _is_distributed_error(error: BaseException) -> bool:
    """gloo/NCCL/store failures: torch raises DistError subclasses, some paths a RuntimeError naming the backend."""
    import torch.distributed as dist

    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(k in text for k in ("gloo", "Gloo", "NCCL", "Connection closed"))


if __name__ == "__main__":
    sys.exit(main())
