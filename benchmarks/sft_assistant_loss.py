"""Loss on every token vs on the assistant turns only: which default serves the demo better (CPU, ~3 minutes).

Trains the demo's tiny Phi-3 model twice with fine_tune.py and the demo's own settings (tools/demo/story.py:
150 steps, learning rate 1e-2, 256 tokens, batch 8, full fine-tuning), once with each loss, on the bundled sample
(data/sample/train_sft.jsonl), then scores both trained models on the held-out files the same way (the gate set,
data/sample/gate_sft.jsonl, which the evaluation gate scores, and the validation split, test_sft.jsonl): the mean
loss on the assistant tokens (what a chat model is asked to produce, and what an answer quality gate measures) and
the mean loss on all tokens. Lower is better; the table prints both.

    .venv/bin/python benchmarks/sft_assistant_loss.py [--steps 150] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tools.core.repo import REPO_ROOT, active
from tools.core.scripts import load_script

FINE_TUNE = active().sft_script
DATA = REPO_ROOT / "data" / "sample"
DEMO_ARGS = ("--learning-rate", "1e-2", "--warmup", "0.05", "--max-length", "256", "--per-device-train-batch-size",
             "8", "--gradient-accumulation-steps", "1", "--no-lora", "--logging-steps", "25", "--seed", "0")


def load_fine_tune() -> Any:
    return load_script(FINE_TUNE, "fine_tune")


def train(base: Path, work: Path, steps: int, assistant_only: bool) -> Path:
    """One fine_tune.py run; returns the trained checkpoint (the trainer's final save)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": "", "OMP_NUM_THREADS": "2"}
    env.pop("MLFLOW_TRACKING_URI")
    command = [sys.executable, str(FINE_TUNE), "--train-file", str(DATA / "train_sft.jsonl"), "--model-name-or-path",
               str(base), "--output-dir", str(work / "model"), "--work-dir", str(work / "work"), "--max-steps",
               str(steps), *DEMO_ARGS, "--assistant-only-loss" if assistant_only else "--no-assistant-only-loss"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"fine_tune.py failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return work / "work" / "final"


def held_out_losses(ft: Any, checkpoint: Path, tokenizer: Any, conversations: list[list[dict]]) -> dict[str, float]:
    """Mean next-token loss over the assistant tokens and over all tokens of the held-out conversations."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, attn_implementation="sdpa").eval()
    template = ft.training_chat_template(tokenizer)
    sums = {"assistant": 0.0, "all": 0.0}
    counts = {"assistant": 0, "all": 0}
    for messages in conversations:
        row = ft.tokenize(tokenizer, messages, template)
        ids = torch.tensor(row["input_ids"][:2048])[None]
        mask = torch.tensor(row["assistant_masks"][: ids.shape[1]])
        with torch.no_grad():
            logits = model(ids).logits[0, :-1]
        losses = torch.nn.functional.cross_entropy(logits.float(), ids[0, 1:], reduction="none")
        target_is_assistant = mask[1:].bool()
        sums["assistant"] += float(losses[target_is_assistant].sum())
        counts["assistant"] += int(target_is_assistant.sum())
        sums["all"] += float(losses.sum())
        counts["all"] += losses.numel()
    return {key: sums[key] / max(counts[key], 1) for key in sums}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per run (the demo's: 150)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    for switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(switch, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from tools.demo.tiny_model import build_tiny_model

    ft = load_fine_tune()
    work = Path(tempfile.mkdtemp(prefix="assistant-loss-"))
    base = build_tiny_model(work / "tiny", seed=0)
    tokenizer = ft.load_tokenizer(str(base))
    splits = {name: [json.loads(line)["messages"] for line in (DATA / f"{name}_sft.jsonl").read_text().splitlines()
                     if line.strip()] for name in ("gate", "test") if (DATA / f"{name}_sft.jsonl").is_file()}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, assistant_only in (("every token", False), ("assistant turns only", True)):
        checkpoint = train(base, work / name.replace(" ", "-"), args.steps, assistant_only)
        results[name] = {split: held_out_losses(ft, checkpoint, tokenizer, rows) for split, rows in splits.items()}
    sizes = ", ".join(f"{split} {len(rows)}" for split, rows in splits.items())
    print(f"assistant-only loss vs every token: tiny Phi-3, demo settings, {args.steps} steps; held-out loss on "
          f"data/sample ({sizes} conversations); lower is better")
    header = f"{'trained with loss on':<22}" + "".join(f"  {split + ' assistant':>16}  {split + ' all':>10}"
                                                      for split in splits)  # fmt: skip
    print(header)
    for name, by_split in results.items():
        print(f"{name:<22}" + "".join(f"  {by_split[s]['assistant']:>16.4f}  {by_split[s]['all']:>10.4f}"
                                      for s in splits))  # fmt: skip
    first = next(iter(splits))
    better = min(results, key=lambda name: results[name][first]["assistant"])
    print(f"lower loss on the {first} set's assistant tokens: {better}")
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "results": results, "better": better}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
