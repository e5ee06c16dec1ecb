"""Training throughput of our SFT recipe vs the walkthrough's, on a Phi-3-mini-shaped model, LoRA and full.

Every configuration trains the same randomly initialised model (built from a config: no download) on the same
synthetic, ultrachat-like token sequences, with TRL's SFTTrainer, each in its own subprocess (clean peak-memory
figures). Reported per configuration: the attention implementation it really ran, tokens/s (real tokens, no
padding), optimiser-step time, peak memory and MFU. MFU counts model FLOPs over the GPU's dense bf16 peak: the
linear layers at 6 x non-embedding parameters per token for full fine-tuning and 4 x for LoRA (no weight
gradients for the frozen base: forward 2N + activation gradients 2N; the adapters' own FLOPs are < 1 %), plus the
attention: 3 x 4 x layers x hidden x the causal query-key pairs of each conversation in the batch (forward 2 matmuls
of 2 FLOPs per multiply-add; backward twice the forward). Then the ratios ours / walkthrough.

- ours: fine_tune.py's own defaults (read from its parser and its SFTConfig builder): attention ``auto`` (the hub
  flash-attention kernel where it can be fetched, else flex_attention on a GPU, sdpa on CPU), bfd_split
  padding-free packing, no gradient checkpointing, batch 2 x accumulation 4 (sdpa on a GPU: 1 x 8, as the script
  does), and with sdpa forced, to measure the fallback.
- walkthrough: the seed's fine_tune.py: eager attention, batch 4, accumulation 1, old-TRL packing (concatenate and
  cut into 2048-token rows, i.e. TRL's "wrapped"), gradient checkpointing on.

With two or more CUDA GPUs it then runs fine_tune.py under torchrun on all of them (DDP, and DeepSpeed ZeRO-2
when the package is installed: DeepSpeed does not run on CPU, so this is where its check lives) and prints what the
script reports (world size, steps per epoch, parallelism); without, it says it did not run.

Targets on one H100/H200 (issue 22): LoRA >= 2x the walkthrough's tokens/s at MFU >= 35 % and <= 40 GiB; full
fine-tuning >= 1.5x at MFU >= 40 %. Without CUDA the run is a tiny smoke test (``--smoke`` is implied): the
figures only show that the harness works. benchmarks/train_throughput_device.sh prepares and runs it on a GPU
machine without network.

    .venv/bin/python benchmarks/train_throughput.py [--smoke] [--steps 10] [--warmup-steps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FINE_TUNE = REPO_ROOT / "components" / "finetune-sft" / "src" / "fine_tune.py"
# name -> (recipe, method, attention); flex_attention needs CUDA (no backward on CPU), so CPU runs skip it.
CONFIGS = {
    "walkthrough-full": ("walkthrough", "full", "eager"),
    "ours-full": ("ours", "full", "auto"),
    "ours-full-sdpa": ("ours", "full", "sdpa"),
    "walkthrough-lora": ("walkthrough", "lora", "eager"),
    "ours-lora": ("ours", "lora", "auto"),
    "ours-lora-sdpa": ("ours", "lora", "sdpa"),
}
TARGETS = {"lora": (2.0, 0.35, 40.0), "full": (1.5, 0.40, None)}  # ratio, MFU, peak GiB (issue 22)

# Phi-3-mini-4k-instruct's shape (config.json of the hub model).
PHI3_MINI = dict(
    vocab_size=32064,
    hidden_size=3072,
    intermediate_size=8192,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    original_max_position_embeddings=4096,
    bos_token_id=1,
    eos_token_id=32000,
    pad_token_id=32000,
    tie_word_embeddings=False,
)
TINY = dict(PHI3_MINI, vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, eos_token_id=2, pad_token_id=3)  # fmt: skip

# Dense bf16 peak FLOP/s by device-name fragment (vendor data sheets), checked in order.
PEAK_BF16 = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12),
             ("A10", 125e12), ("V100", 125e12))  # fmt: skip


def _load_fine_tune() -> Any:
    spec = importlib.util.spec_from_file_location("fine_tune", FINE_TUNE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _synthetic_rows(n: int, median: float, cap: int, vocab: int, seed: int) -> list[dict[str, list[int]]]:
    """Conversations of ultrachat-like length (log-normal, ~1.1k tokens median at full size), random token ids."""
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = int(min(cap, max(8, rng.lognormvariate(math.log(median), 0.6))))
        rows.append({"input_ids": [rng.randrange(4, vocab) for _ in range(length)]})
    return rows


def worker(name: str, smoke: bool, steps: int, warmup: int) -> dict[str, Any]:
    """Train ``warmup + steps`` optimiser steps with one configuration; return its figures."""
    import torch
    from datasets import Dataset
    from transformers import Phi3Config, Phi3ForCausalLM, TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    ft = _load_fine_tune()
    recipe, method, asked = CONFIGS[name]
    cuda = torch.cuda.is_available()
    shape = TINY if smoke else PHI3_MINI
    max_length = 128 if smoke else 2048
    required = ["--train-file", "x", "--model-name-or-path", "x", "--output-dir", "x", "--max-length", str(max_length)]
    args = ft.build_parser().parse_args(required)  # fine_tune.py's defaults: one source of truth
    args.lora = method == "lora"
    args.learning_rate = ft.resolve_learning_rate(args)
    args.max_steps = warmup + steps
    args.logging_steps = 10**6
    precision = ft.resolve_precision("auto")
    if recipe == "ours":
        chosen = ft.resolve_attention(asked)
        attention, attention_line = chosen.implementation, chosen.line
        resized = ft.dense_mask_micro_batches(args, attention, cuda)
        if resized:
            args.per_device_train_batch_size, args.gradient_accumulation_steps = resized
    else:  # the walkthrough's fine_tune.py
        attention, attention_line = "eager", "attention: eager (the walkthrough's)"
        args.per_device_train_batch_size, args.gradient_accumulation_steps = 4, 1
        args.gradient_checkpointing = True
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    config = ft.build_sft_config(args, precision, out_dir, has_eval=False)
    config.disable_tqdm = True
    if recipe == "walkthrough":
        config.packing_strategy, config.padding_free = "wrapped", False  # old TRL ConstantLengthDataset

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        model = Phi3ForCausalLM._from_config(Phi3Config(**shape), dtype=dtype, attn_implementation=attention)
    model.config.use_cache = False
    params = sum(p.numel() for p in model.parameters())
    non_embedding = params - model.get_input_embeddings().weight.numel()
    linear_flops_per_token = (4 if args.lora else 6) * non_embedding
    attention_flops_per_pair = 3 * 4 * shape["num_hidden_layers"] * shape["hidden_size"]
    median = 60 if smoke else 1100
    rows_needed = (warmup + steps) * args.per_device_train_batch_size * args.gradient_accumulation_steps * 4
    dataset = Dataset.from_list(_synthetic_rows(max(rows_needed, 64), median, max_length * 2, shape["vocab_size"], 0))

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.tokens = 0
            self.pairs = 0
            self.step_pairs: list[int] = []
            self.step_tokens: list[int] = []
            self.step_times: list[float] = []
            self.t0 = 0.0

        def _sync(self) -> None:
            if cuda:
                torch.cuda.synchronize()

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self._sync()
            self.tokens, self.pairs, self.t0 = 0, 0, time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self._sync()
            self.step_times.append(time.perf_counter() - self.t0)
            self.step_tokens.append(self.tokens)
            self.step_pairs.append(self.pairs)

    timer = Timer()

    class CountingTrainer(SFTTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):  # noqa: ANN001, ANN201
            mask = inputs.get("attention_mask")
            timer.tokens += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
            timer.pairs += causal_pairs(inputs)
            return super().training_step(model, inputs, num_items_in_batch)

    from tools.demo.tiny_model import build_tokenizer  # only supplies pad/eos ids: the data is already token ids

    tokenizer = build_tokenizer(out_dir / "tokenizer")
    trainer = CountingTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer],
        peft_config=ft.lora_config(args) if args.lora else None,
    )
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    error = None
    try:
        trainer.train()
    except torch.OutOfMemoryError:
        error = "out of memory"
    measured_t, measured_n = timer.step_times[warmup:], timer.step_tokens[warmup:]
    result: dict[str, Any] = {
        "config": name,
        "method": method,
        "attention": attention,
        "attention_line": attention_line,
        "packing": "wrapped" if recipe == "walkthrough" else (args.packing_strategy if args.packing else "off"),
        "gradient_checkpointing": args.gradient_checkpointing,
        "batch": f"{args.per_device_train_batch_size}x{args.gradient_accumulation_steps}",
        "precision": precision,
        "max_length": max_length,
        "params": params,
        "error": error,
    }
    if measured_t and not error:
        tokens_per_s = sum(measured_n) / sum(measured_t)
        result.update(tokens_per_step=sum(measured_n) / len(measured_n), step_time_s=sum(measured_t) / len(measured_t),
                      tokens_per_s=tokens_per_s)  # fmt: skip
        device = torch.cuda.get_device_name() if cuda else "cpu"
        peak = next((flops for frag, flops in PEAK_BF16 if frag in device), None) if cuda else None
        result["device"] = device
        flops = linear_flops_per_token * sum(measured_n) + attention_flops_per_pair * sum(timer.step_pairs[warmup:])
        result["model_tflops_per_s"] = flops / sum(measured_t) / 1e12
        result["mfu"] = flops / sum(measured_t) / peak if peak and precision == "bf16" else None
    if cuda:
        result["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        result["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB, RSS
    return result


def causal_pairs(inputs: dict[str, Any]) -> int:
    """Causal query-key pairs of the model's attention in one micro-batch: per conversation for padding-free packed
    rows (position ids restart at 0), per row otherwise (the real tokens of each padded or wrapped row)."""
    positions = inputs.get("position_ids")
    if positions is not None and inputs.get("attention_mask") is None:
        flat = positions.reshape(-1).tolist()
        starts = [i for i, p in enumerate(flat) if p == 0] + [len(flat)]
        return sum((b - a) * (b - a + 1) // 2 for a, b in zip(starts, starts[1:], strict=False))
    mask = inputs.get("attention_mask")
    ids = inputs["input_ids"]
    lengths = mask.sum(dim=1).tolist() if mask is not None else [ids.shape[1]] * ids.shape[0]
    return sum(n * (n + 1) // 2 for n in lengths)


def distributed_check(gpus: int) -> list[str]:
    """GPU-only: fine_tune.py under torchrun on every GPU of this machine (DDP, then DeepSpeed ZeRO-2 when the
    package is installed) on the tiny model; reports what the script says it ran and its steps per epoch. The CPU
    data-parallel path is proven by tests/sft/test_distributed.py; DDP over NCCL, FSDP and DeepSpeed need GPUs."""
    if gpus < 2:
        return [f"distributed check: not run (needs >= 2 CUDA GPUs, found {gpus})"]
    import importlib.util

    from tools.demo.tiny_model import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    model = build_tiny_model(work / "tiny", seed=0)
    train = work / "train.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"},
                          {"role": "assistant", "content": f"Answer {i}: " + "word " * (i % 40)}]} for i in range(256)]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")  # fmt: skip
    ds_config = work / "zero2.json"
    ds_config.write_text(json.dumps({"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto",
                                     "gradient_accumulation_steps": "auto", "train_batch_size": "auto",
                                     "bf16": {"enabled": "auto"}}))  # fmt: skip
    variants: list[tuple[str, list[str]]] = [("DDP", [])]
    if importlib.util.find_spec("deepspeed") is not None:
        variants.append(("DeepSpeed ZeRO-2", ["--deepspeed", str(ds_config)]))
    lines = []
    for name, extra in variants:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(gpus), "--master_addr",
                   "127.0.0.1", str(FINE_TUNE), "--train-file", str(train), "--model-name-or-path", str(model),
                   "--output-dir", str(work / name.split()[0]), "--max-steps", "10", "--max-length", "256", *extra]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
        said = [x.split("] ", 1)[-1] for x in proc.stdout.splitlines() if x.startswith("[fine_tune] ")
                and any(k in x for k in ("world size", "steps per epoch", "parallelism", "train_runtime"))]
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
        lines.append(f"distributed check, {name} on {gpus} GPUs: {status}; " + " | ".join(said))
    if len(variants) == 1:
        lines.append("distributed check, DeepSpeed: not run (the deepspeed package is not installed)")
    return lines


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU-sized shapes (implied without CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="measured optimiser steps (default 10; smoke 5)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="unmeasured first steps (default 3; smoke 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=None, help="run only these")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    smoke = args.smoke or not torch.cuda.is_available()
    steps = args.steps or (5 if smoke else 10)
    warmup = args.warmup_steps if args.warmup_steps is not None else (2 if smoke else 3)
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, smoke, steps, warmup)), flush=True)
        return 0

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    env.pop("MLFLOW_TRACKING_URI", None)
    names = args.configs or list(CONFIGS)
    results = []
    for name in names:
        command = [sys.executable, __file__, "--worker", name, "--steps", str(steps), "--warmup-steps", str(warmup)]
        proc = subprocess.run(command + (["--smoke"] if smoke else []), capture_output=True, text=True, env=env)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(f"{name}: worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}", file=sys.stderr)
            results.append({"config": name, "method": CONFIGS[name][1], "error": f"worker exit {proc.returncode}"})
            continue
        results.append(json.loads(line[len("RESULT ") :]))

    mode = "SMOKE (tiny model, CPU; figures only prove the harness)" if smoke else "Phi-3-mini shape"
    device = next((r["device"] for r in results if r.get("device")), None)
    print(f"train throughput: {mode}; {warmup} warmup + {steps} measured steps; device {device}")
    header = ("config", "attention", "packing", "ckpt", "batch", "tok/step", "step s", "tokens/s", "peak GiB", "MFU")
    rows = [header]
    for r in results:
        if "attention" not in r:
            rows.append((r["config"], *["-"] * 8, r["error"]))
            continue
        rows.append((r["config"], r["attention"], r["packing"], "on" if r["gradient_checkpointing"] else "off",
                     r["batch"], _fmt(r.get("tokens_per_step"), ".0f"), _fmt(r.get("step_time_s"), ".3f"),
                     _fmt(r.get("tokens_per_s"), ".0f"), _fmt(r.get("peak_memory_gb"), ".2f"),
                     _fmt(r.get("mfu"), ".1%") if not r.get("error") else r["error"]))  # fmt: skip
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for r in results:
        if r.get("attention_line"):
            print(f"{r['config']}: {r['attention_line']}")
    ratios = verdicts(results, smoke)
    for line in ratios:
        print(line)
    distributed = distributed_check(torch.cuda.device_count() if torch.cuda.is_available() else 0)
    for line in distributed:
        print(line)
    if args.json:
        payload = {"smoke": smoke, "results": results, "ratios": ratios, "distributed": distributed}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def verdicts(results: list[dict[str, Any]], smoke: bool) -> list[str]:
    """Ours / walkthrough tokens/s per method, and the issue's targets where the run is on a GPU."""
    by_name = {r["config"]: r for r in results}
    lines = []
    for method, (ratio_target, mfu_target, memory_target) in TARGETS.items():
        walk = by_name.get(f"walkthrough-{method}", {})
        for name in (f"ours-{method}", f"ours-{method}-sdpa"):
            ours = by_name.get(name, {})
            if not (walk.get("tokens_per_s") and ours.get("tokens_per_s")):
                continue
            ratio = ours["tokens_per_s"] / walk["tokens_per_s"]
            line = f"{name} / walkthrough-{method} tokens/s: {ratio:.2f}x"
            if not smoke:
                mfu, memory = ours.get("mfu") or 0.0, ours.get("peak_memory_gb") or 0.0
                met = ratio >= ratio_target and mfu >= mfu_target and (memory_target is None or memory <= memory_target)
                goal = f">= {ratio_target}x at MFU >= {mfu_target:.0%}" + (
                    f" and <= {memory_target:.0f} GiB" if memory_target else "")
                line += f" (target {goal}: {'met' if met else 'NOT met'})"
            lines.append(line)
    return lines


if __name__ == "__main__":
    sys.exit(main())
