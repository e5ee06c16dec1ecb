"""Build a tiny Phi-3-architecture chat model and a byte-level BPE tokenizer offline, deterministically.

The model has Phi-3's architecture (``Phi3ForCausalLM``: hidden 64, 2 layers, 4 heads) with random weights; the
tokenizer is a byte-level BPE trained with ``tokenizers`` on a built-in English corpus and carries the Phi-3 chat
template (``<|user|> ... <|end|> <|assistant|>``). The folder loads with ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained(DIR)`` and stands in for a hub model in tests, ``make demo`` and local serving.
Same seed, same bytes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tools.core.errors import UserError
from tools.core.offline import apply_offline_env

# Special tokens, in id order (ids 0..n-1). Phi-3 uses <|endoftext|> as eos and <|end|> to close a turn;
# generation stops at either (generation_config.eos_token_id lists both).
BOS, EOS, PAD, UNK = "<s>", "<|endoftext|>", "<|pad|>", "<unk>"
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
SPECIAL_TOKENS = (UNK, BOS, EOS, PAD, *CHAT_TOKENS)

VOCAB_SIZE = 1024
HIDDEN_SIZE = 64
INTERMEDIATE_SIZE = 128
NUM_LAYERS = 2
NUM_HEADS = 4
MAX_POSITIONS = 2048

# A small built-in corpus: enough English for a few hundred BPE merges. Deliberately static (no data files) so the
# tokenizer is identical on every machine.
_CORPUS = """\
The quick brown fox jumps over the lazy dog while the cat watches from the window.
Azure Machine Learning runs command jobs on compute clusters and stores models in a registry.
A chat model answers questions from users; the assistant should be helpful, honest and brief.
Fine-tuning adapts a pretrained language model to a new task with a small learning rate.
What is the capital of France? The capital of France is Paris, a city on the river Seine.
How do I bake bread? Mix flour, water, salt and yeast, knead the dough, let it rise, then bake it.
Please summarise the following paragraph in two sentences for a busy reader.
Write a short poem about the sea, the wind and the light of the morning sun.
Explain why the sky is blue: sunlight is scattered by the molecules of the air, blue light most of all.
Tell me about the history of computers, from mechanical calculators to modern graphics processors.
The endpoint returned a response in two hundred milliseconds with a status code of 200.
Users ask about travel, cooking, science, programming, history, music, sport and health.
Python is a programming language; its functions, classes and modules make code easy to read.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 2024 2025 2026 3.14 42.
Thank you for your question. Here is a step by step answer with examples and a short summary.
Could you give me three ideas for a birthday party in the garden with music and games?
The model was trained for one epoch with a cosine schedule, warmup and gradient accumulation.
Good morning! I would like to book a table for four people tomorrow evening at seven.
Rivers flow to the ocean, mountains rise above the clouds, and forests cover the valleys.
Sure, I can help with that. First, open the settings; second, choose the account; third, save.
"""


def _corpus_lines() -> list[str]:
    lines = [line for line in _CORPUS.splitlines() if line.strip()]
    # Chat-shaped lines teach merges around the template's newlines and punctuation.
    chat = [f"{tok}\n{line}" for tok, line in zip(("<|user|>", "<|assistant|>") * len(lines), lines, strict=False)]
    return lines + chat + [line.lower() for line in lines] + [line.upper() for line in lines[:5]]


def _phi3_chat_template() -> str:
    from trl.chat_template_utils import phi3_chat_template

    return phi3_chat_template


def build_tokenizer(out_dir: Path):  # noqa: ANN201 - returns a transformers fast tokenizer (lazy import)
    """Train the byte-level BPE on the built-in corpus and save it as a fast tokenizer into ``out_dir``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus_lines(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=list(CHAT_TOKENS),
        model_max_length=MAX_POSITIONS,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = _phi3_chat_template()
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def build_tiny_model(out_dir: Path, seed: int = 0, progress: Callable[[str], None] | None = None) -> Path:
    """Write a tiny random Phi-3 model + tokenizer into ``out_dir`` (replaced atomically) and return it.

    ``progress`` gets one line before each stage (the imports alone take seconds on a cold disk)."""
    step = progress or (lambda line: None)
    step("importing torch and transformers")
    import torch
    from transformers import GenerationConfig, Phi3Config, Phi3ForCausalLM

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        step("training the byte-level BPE tokenizer on the built-in corpus")
        tokenizer = build_tokenizer(staging)
        ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (("bos", BOS), ("eos", EOS), ("pad", PAD))}
        end_id = tokenizer.convert_tokens_to_ids("<|end|>")
        config = Phi3Config(
            vocab_size=len(tokenizer),
            hidden_size=HIDDEN_SIZE,
            intermediate_size=INTERMEDIATE_SIZE,
            num_hidden_layers=NUM_LAYERS,
            num_attention_heads=NUM_HEADS,
            num_key_value_heads=NUM_HEADS,
            max_position_embeddings=MAX_POSITIONS,
            original_max_position_embeddings=MAX_POSITIONS,
            bos_token_id=ids["bos"],
            eos_token_id=ids["eos"],
            pad_token_id=ids["pad"],
            tie_word_embeddings=False,
        )
        step(f"initialising the Phi-3 model ({NUM_LAYERS} layers, hidden size {HIDDEN_SIZE}, seed {seed})")
        torch.manual_seed(seed)
        model = Phi3ForCausalLM(config)
        model.generation_config = GenerationConfig(
            bos_token_id=ids["bos"], eos_token_id=[ids["eos"], end_id], pad_token_id=ids["pad"]
        )
        step("saving weights (safetensors) and tokenizer")
        model.save_pretrained(str(staging), safe_serialization=True)
        (staging / "tiny_model.json").write_text(
            json.dumps({"seed": seed, "architecture": "Phi3ForCausalLM", "built_by": "python -m tools tiny-model"})
            + "\n",
            encoding="utf-8",
        )
        staging.chmod(0o755)  # mkdtemp makes 0700; the result is an ordinary shared folder
        for path in staging.iterdir():
            path.chmod(0o644)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write (replaced if it exists)")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")


def run(args: argparse.Namespace) -> int:

    apply_offline_env()
    start = time.monotonic()

    def progress(line: str) -> None:
        print(f"tiny-model [{time.monotonic() - start:4.1f} s] {line} ...", flush=True)

    out = build_tiny_model(args.out, seed=args.seed, progress=progress)
    print(f"tiny Phi-3 model and tokenizer written to {out}")
    return 0
