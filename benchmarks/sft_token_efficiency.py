"""Token efficiency of our SFT recipe vs the walkthrough's, on ultrachat-shaped conversation lengths (CPU, exact).

Every figure comes from the batches the training loop would really see: fine_tune.py's own SFTConfig (its parser's
defaults, then each recipe's changes) goes into TRL's SFTTrainer, whose dataset preparation (packing, truncation)
and data collator produce the batches; the benchmark only counts them. Per recipe:

- useful share: real conversation tokens / tokens processed (padding is processed, not useful);
- truncated: the share of the input's tokens that never reach the model;
- attention work per useful token: query-key pairs the attention kernel computes, from each batch's shape and
  mask: a varlen flash kernel computes each conversation's causal triangle; flex_attention computes the 128 x 128
  blocks its document mask leaves on; sdpa and eager given a mask (packed rows, padded batches) compute every pair
  of the row; sdpa without a mask (wrapped rows) takes its causal path (half the square).

Recipes: ours (fine_tune.py defaults: bfd_split packing, padding-free, batch 2 x 4, 2,048 tokens) with each
attention; ours with bfd (the old default, which drops overflow); the walkthrough's padded batches of 4 (no
packing, each conversation cut at 2,048); the walkthrough's packing (TRL "wrapped": concatenated and cut into
2,048-token rows, so attention crosses conversations). Lengths: log-normal with ultrachat_200k's mean of 1,467
tokens per dialogue (Ding et al. 2023, arXiv 2305.14233, Table 5) and sigma 0.5, so ~18 % exceed 2,048 tokens.

    .venv/bin/python benchmarks/sft_token_efficiency.py [--conversations 2000] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools.core.repo import active
from tools.core.scripts import load_script

FINE_TUNE = active().sft_script
MEAN_TOKENS = 1467  # ultrachat: tokens per dialogue (Ding et al. 2023, Table 5)
SIGMA = 0.5
FLEX_BLOCK = 128  # flex_attention's default block size (torch.nn.attention.flex_attention)


def load_fine_tune() -> Any:
    return load_script(FINE_TUNE, "fine_tune")


def ultrachat_lengths(n: int, seed: int, cap: int = 16384) -> list[int]:
    """Log-normal conversation lengths with the ultrachat mean (mu chosen so that E[X] = MEAN_TOKENS)."""
    rng = random.Random(seed)
    mu = math.log(MEAN_TOKENS) - SIGMA**2 / 2
    return [int(min(cap, max(16, rng.lognormvariate(mu, SIGMA)))) for _ in range(n)]


@dataclass
class Recipe:
    name: str
    attention: str  # varlen | flex | sdpa-mask | sdpa-causal | eager
    packing: bool
    strategy: str = "bfd_split"
    batch: int | None = None  # per-device batch (None: the script's default)
    accumulation: int | None = None


RECIPES = (
    Recipe("ours, flash varlen (kernels)", "varlen", True),
    Recipe("ours, flex_attention", "flex", True),
    Recipe("ours, sdpa (1 row per micro-batch)", "sdpa-mask", True, batch=1, accumulation=8),
    Recipe("ours, sdpa (2 rows per micro-batch)", "sdpa-mask", True),
    Recipe("ours with bfd (drops overflow)", "varlen", True, strategy="bfd"),
    Recipe("walkthrough padded, batch 4", "eager", False, batch=4, accumulation=1),
    Recipe("walkthrough packing (wrapped)", "eager", True, strategy="wrapped", batch=4, accumulation=1),
)


def attention_pairs(kind: str, row_lengths: list[list[int]], row_width: int) -> int:
    """Query-key pairs one micro-batch costs: ``row_lengths`` are the documents of each row, ``row_width`` the
    row's length as the kernel sees it (padding included)."""
    if kind == "varlen":
        return sum(n * (n + 1) // 2 for row in row_lengths for n in row)
    if kind == "flex":
        total = 0
        for row in row_lengths:
            start = 0
            blocks: set[tuple[int, int]] = set()
            for n in row:  # blocks touched by each document's causal triangle
                for q in range(start // FLEX_BLOCK, (start + n - 1) // FLEX_BLOCK + 1):
                    for k in range(start // FLEX_BLOCK, q + 1):
                        blocks.add((q, k))
                start += n
            total += len(blocks) * FLEX_BLOCK * FLEX_BLOCK
        return total
    if kind == "sdpa-causal":
        return len(row_lengths) * row_width * (row_width + 1) // 2
    return len(row_lengths) * row_width * row_width  # a mask given: every pair computed


def measure(ft: Any, recipe: Recipe, lengths: list[int], tokenizer: Any, model: Any, work: Path) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTTrainer

    required = ["--train-file", "x", "--model-name-or-path", "x", "--output-dir", "x"]
    args = ft.build_parser().parse_args(required)  # fine_tune.py's defaults: one source
    args.learning_rate = ft.resolve_learning_rate(args)
    args.packing = recipe.packing
    args.packing_strategy = recipe.strategy if recipe.strategy != "wrapped" else "bfd"
    if recipe.batch:
        args.per_device_train_batch_size, args.gradient_accumulation_steps = recipe.batch, recipe.accumulation
    config = ft.build_sft_config(args, "fp32", work / recipe.name.replace(" ", "_"), has_eval=False)
    if recipe.strategy == "wrapped":  # the walkthrough's old TRL packing (ConstantLengthDataset)
        config.packing_strategy, config.padding_free = "wrapped", False
    config.shuffle_dataset, config.dataloader_drop_last = False, False
    rng = random.Random(1)
    vocab = tokenizer.vocab_size
    dataset = Dataset.from_dict({"input_ids": [[rng.randrange(10, vocab) for _ in range(n)] for n in lengths]})
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    padding_free = trainer.padding_free
    processed = useful = pairs = 0
    for batch in trainer.get_train_dataloader():
        ids = batch["input_ids"]
        processed += ids.numel()
        if padding_free:  # one flattened row per micro-batch; documents from the restarting position ids
            positions = batch["position_ids"][0].tolist()
            starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
            docs = [b - a for a, b in zip(starts, starts[1:], strict=False)]
            useful += len(positions)
            pairs += attention_pairs(recipe.attention, [docs], len(positions))
        else:
            mask = batch["attention_mask"]
            real = mask.sum(dim=1).tolist()
            useful += int(sum(real))
            kind = recipe.attention
            if recipe.strategy == "wrapped":  # full rows, no mask: the causal path for sdpa, full square for eager
                unmasked = "sdpa-causal" if kind == "sdpa-mask" else kind
                pairs += attention_pairs(unmasked, [[w] for w in real], ids.shape[1])
            else:
                pairs += attention_pairs(kind, [[n] for n in real], ids.shape[1])
    total = sum(lengths)
    cross = recipe.strategy == "wrapped"
    return {
        "recipe": recipe.name,
        "processed": processed,
        "useful": useful,
        "useful_share": useful / processed,
        "truncated_share": max(total - useful, 0) / total,
        "pairs_per_token": pairs / max(useful, 1),
        "rows_per_step": args.per_device_train_batch_size * args.gradient_accumulation_steps,
        "crosses_conversations": cross,
        "recipe_facts": asdict(recipe),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=2000, help="synthetic conversations (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    for switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(switch, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import datasets
    import transformers
    from transformers import Phi3Config, Phi3ForCausalLM

    from tools.demo.tiny_model import build_tokenizer

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    ft = load_fine_tune()
    lengths = ultrachat_lengths(args.conversations, args.seed)
    work = Path(tempfile.mkdtemp(prefix="token-efficiency-"))
    tokenizer = build_tokenizer(work / "tokenizer")
    model = Phi3ForCausalLM(Phi3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                       num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                       bos_token_id=tokenizer.bos_token_id))  # fmt: skip
    over = sum(1 for n in lengths if n > 2048)
    print(f"SFT token efficiency: {len(lengths)} ultrachat-shaped conversations (log-normal, mean "
          f"{sum(lengths) / len(lengths):.0f} tokens, {over / len(lengths):.1%} longer than 2,048), max length 2,048")
    results = [measure(ft, recipe, lengths, tokenizer, model, work) for recipe in RECIPES]
    padded = next(r for r in results if r["recipe"].startswith("walkthrough padded"))
    header = ("recipe", "rows/step", "useful share", "truncated", "attn pairs/token", "useful vs padded", "note")
    rows = [header]
    for r in results:
        note = "attends across conversations" if r["crosses_conversations"] else ""
        rows.append((r["recipe"], str(r["rows_per_step"]), f"{r['useful_share']:.4f}", f"{r['truncated_share']:.2%}",
                     f"{r['pairs_per_token']:.0f}", f"{r['useful_share'] / padded['useful_share']:.2f}x", note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    ours = results[0]
    print(f"targets: useful share >= 0.99: {'met' if ours['useful_share'] >= 0.99 else 'NOT met'} "
          f"({ours['useful_share']:.4f}); truncated 0 by default: "
          f"{'met' if ours['truncated_share'] == 0 else 'NOT met'} ({ours['truncated_share']:.2%})")
    if args.json:
        args.json.write_text(json.dumps({"lengths": len(lengths), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
