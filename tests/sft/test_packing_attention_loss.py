"""Issue 22 on CPU: the attention choice (auto and its fallback), packing without loss (the truncated-token share),
assistant-only labels, the learning-rate default of LoRA and the warning when the loss does not fall.

The loss-curve comparison runs the real script twice on the same packed tiny run: sdpa and eager may differ only
in float summation order (measured: identical curves over 8 steps, 2026-12-03); the tolerance, 1e-4, is 10x below
what a masking mistake gives (two 60-token conversations in one row attended across instead of apart move the
untrained tiny model's loss by 9.7e-4).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sft.conftest import chat_row, write_jsonl

CURVE_ARGS = ("--max-steps", "8", "--logging-steps", "1", "--max-length", "128", "--per-device-train-batch-size", "2",
              "--gradient-accumulation-steps", "1", "--learning-rate", "1e-3", "--warmup", "0", "--seed", "0")
CURVE_TOLERANCE = 1e-4


def _losses(run) -> list[float]:  # noqa: ANN001
    return [row["train_loss"] for row in run.metrics["history"] if "train_loss" in row]


# ------------------------------------------------------------------------------------------------------ attention


def _choose(module, choice: str, capability: int | None, *, flash: bool = False, kernel: str | None = "offline",
            flex: bool = True):  # noqa: ANN001, ANN202  # fmt: skip
    return module.choose_attention(choice, cuda_capability=capability, flash_attn_installed=flash, flex_available=flex,
                                   load_kernel=lambda: kernel, kernel_id="kernels-community/flash-attn2")  # fmt: skip


def test_auto_takes_the_fastest_available(fine_tune_module) -> None:  # noqa: ANN001
    assert _choose(fine_tune_module, "auto", None).implementation == "sdpa"
    assert _choose(fine_tune_module, "auto", 7).implementation == "sdpa"
    assert _choose(fine_tune_module, "auto", 9, flash=True).implementation == "flash_attention_2"
    assert _choose(fine_tune_module, "auto", 9, kernel=None).implementation == "kernels-community/flash-attn2"
    fallback = _choose(fine_tune_module, "auto", 9, kernel="ValueError: offline")
    assert fallback.implementation == "flex_attention"
    assert "kernels-community/flash-attn2 not available (ValueError: offline)" in fallback.line
    assert _choose(fine_tune_module, "auto", 9, flex=False).implementation == "sdpa"


@pytest.mark.parametrize(
    ("choice", "capability", "fragment"),
    [("flex_attention", None, "no backward pass on CPU"), ("kernels", None, "needs a CUDA GPU"),
     ("kernels", 9, "cannot load kernels-community/flash-attn2 (offline)"),
     ("flash_attention_2", 9, "flash-attn package is not installed")],  # fmt: skip
)
def test_an_explicit_choice_that_cannot_run_is_one_line(choice, capability, fragment, fine_tune_module) -> None:  # noqa: ANN001
    with pytest.raises(fine_tune_module.UserInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        _choose(fine_tune_module, choice, capability)


def test_hub_kernel_offline_falls_back_with_a_reason(fine_tune_module) -> None:  # noqa: ANN001
    """The real loader, offline (the test session's HF_HUB_OFFLINE=1): no exception, one reason to log."""
    kernel = fine_tune_module.flash_kernel_id()
    reason = fine_tune_module._load_flash_kernel(kernel)
    assert reason and "\n" not in reason
    chosen = fine_tune_module.choose_attention("auto", cuda_capability=9, flash_attn_installed=False,
                                               flex_available=True, load_kernel=lambda: reason, kernel_id=kernel)
    assert chosen.implementation == "flex_attention" and reason in chosen.line


def test_dense_mask_kernels_train_one_packed_row_per_micro_batch(fine_tune_module) -> None:  # noqa: ANN001
    args = fine_tune_module.build_parser().parse_args(["--train-file", "t", "--model-name-or-path", "m",
                                                       "--output-dir", "o"])  # fmt: skip
    assert fine_tune_module.dense_mask_micro_batches(args, "sdpa", cuda=True) == (1, 8)  # 2 x 4 -> 1 x 8
    assert fine_tune_module.dense_mask_micro_batches(args, "flex_attention", cuda=True) is None
    assert fine_tune_module.dense_mask_micro_batches(args, "sdpa", cuda=False) is None


@pytest.fixture(scope="module")
def packed_runs(call_main, tiny_model: Path, chat_data: dict[str, Path]) -> dict:  # noqa: ANN001
    runs = {}
    for attention in ("sdpa", "eager"):
        run = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model),
                        "--attn-implementation", attention, *CURVE_ARGS)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        runs[attention] = run
    return runs


def test_attention_choices_give_the_same_packed_loss_curve(packed_runs) -> None:  # noqa: ANN001
    sdpa, eager = _losses(packed_runs["sdpa"]), _losses(packed_runs["eager"])
    assert len(sdpa) == len(eager) == 8
    assert max(abs(a - b) for a, b in zip(sdpa, eager, strict=True)) < CURVE_TOLERANCE, (sdpa, eager)
    assert sdpa[-1] < sdpa[0]
    for attention, run in packed_runs.items():
        lines = [line for line in run.stdout.splitlines() if line.startswith("[fine_tune] attention: ")]
        assert lines == [f"[fine_tune] attention: {attention} (as asked)"]


def test_flex_attention_masks_packed_conversations_like_sdpa(fine_tune_module, tiny_model: Path) -> None:  # noqa: ANN001
    """flex_attention cannot train on CPU (no backward), but its forward pass runs: on a packed row (position ids
    restarting per conversation) its document mask gives sdpa's logits and loss. Compiling it takes ~15 s."""
    import torch

    torch.manual_seed(0)
    a, b = torch.randint(10, 800, (1, 9)), torch.randint(10, 800, (1, 6))
    ids, positions = torch.cat([a, b], 1), torch.cat([torch.arange(9), torch.arange(6)])[None]
    out = {}
    for attention in ("sdpa", "flex_attention"):
        model = fine_tune_module.load_model(str(tiny_model), "fp32", attention).eval()
        with torch.no_grad():
            out[attention] = model(ids, position_ids=positions, labels=ids)
    assert torch.allclose(out["sdpa"].logits, out["flex_attention"].logits, atol=1e-5)
    assert abs(float(out["sdpa"].loss) - float(out["flex_attention"].loss)) < 1e-5


def test_auto_on_cpu_logs_one_line(full_run) -> None:  # noqa: ANN001
    lines = [line for line in full_run.stdout.splitlines() if line.startswith("[fine_tune] attention: ")]
    assert lines == ["[fine_tune] attention: sdpa (auto: no CUDA GPU; flash-attention kernels need one, "
                     "flex_attention has no CPU backward)"]  # fmt: skip


# -------------------------------------------------------------------------------------------------------- packing


def test_truncated_share_is_logged_and_zero_by_default(packed_runs) -> None:  # noqa: ANN001
    run = packed_runs["sdpa"]
    assert run.metrics["final"]["truncated_token_share"] == 0
    assert any(line.startswith("[fine_tune] truncated tokens: 0 of ") and line.endswith("(0.00%) [packing bfd_split]")
               for line in run.stdout.splitlines())  # fmt: skip


def test_bfd_drops_the_overflow_and_bfd_split_keeps_it(fine_tune_module) -> None:  # noqa: ANN001
    """TRL's two strategies on lengths around --max-length, counted the way the script counts (Arrow lengths)."""
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    lengths = [5, 12, 20, 33, 8, 16]
    rows = Dataset.from_dict({"input_ids": [list(range(1, n + 1)) for n in lengths],
                              "labels": [list(range(1, n + 1)) for n in lengths]})  # fmt: skip
    total = sum(lengths)
    split = pack_dataset(rows, 16, "bfd_split")
    dropped = pack_dataset(rows, 16, "bfd")
    assert fine_tune_module.dataset_tokens(split) == total
    assert fine_tune_module.dataset_tokens(dropped) == total - fine_tune_module.overflow_tokens(lengths, 16)
    share, line = fine_tune_module.truncation_report(total, fine_tune_module.dataset_tokens(dropped))
    assert share == pytest.approx((4 + 17) / total) and line.startswith(f"truncated tokens: 21 of {total} (")


# ------------------------------------------------------------------------------------------------ assistant loss


def _assistant_char_spans(text: str, messages: list[dict], eos: str) -> list[tuple[int, int]]:
    """Where the assistant turns are in the rendered Phi-3 text: each content with its <|end|> and newline, and
    the final eos after a last assistant turn (the training template puts both inside {% generation %})."""
    spans, cursor = [], 0
    for message in messages:
        head = f"<|{message['role']}|>\n"
        start = text.index(head, cursor) + len(head)
        end = text.index("<|end|>\n", start) + len("<|end|>\n")
        if message["role"] == "assistant":
            spans.append((start, end))
        cursor = end
    if messages[-1]["role"] == "assistant":
        spans.append((cursor, cursor + len(eos)))
    assert text[cursor:] == eos
    return spans


def test_assistant_only_labels_mask_exactly_the_non_assistant_tokens(fine_tune_module, tiny_model: Path,
                                                                     tmp_path: Path) -> None:  # noqa: ANN001
    from trl import SFTTrainer

    rows = [chat_row(i) for i in range(6)]
    rows[1]["messages"].insert(0, {"role": "system", "content": "You are brief."})
    source = write_jsonl(tmp_path / "chats.jsonl", rows)
    summary = fine_tune_module.check_and_normalise(source, "--train-file", tmp_path / "normalised.jsonl")
    tokenizer = fine_tune_module.load_tokenizer(str(tiny_model))
    template = fine_tune_module.training_chat_template(tokenizer)
    assert template != tokenizer.chat_template and "{% generation %}" in template.replace("{%-", "{%")
    dataset = fine_tune_module.tokenize_dataset(summary, tokenizer, tmp_path / "cache", 0, template)
    args = fine_tune_module.build_parser().parse_args(["--train-file", str(source), "--model-name-or-path",
                                                       str(tiny_model), "--output-dir", str(tmp_path / "o"),
                                                       "--assistant-only-loss", "--no-packing"])  # fmt: skip
    args.learning_rate = 1e-3
    config = fine_tune_module.build_sft_config(args, "fp32", tmp_path / "trainer", has_eval=False)
    model = fine_tune_module.load_model(str(tiny_model), "fp32", "sdpa")
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset.remove_columns(["length"]),
                         processing_class=tokenizer)  # fmt: skip
    prepared = trainer.train_dataset
    assert len(prepared) == len(rows)
    for row, example in zip(rows, prepared, strict=True):
        text = tokenizer.apply_chat_template(row["messages"], tokenize=False)  # the model's own template
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        assert example["input_ids"] == encoded["input_ids"]  # the training template renders the same text
        spans = _assistant_char_spans(text, row["messages"], tokenizer.eos_token)
        expected = [token if any(s <= begin and end <= e for s, e in spans) else -100
                    for token, (begin, end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)]
        assert example["labels"] == expected
        assert -100 in expected and any(label != -100 for label in expected)


# ------------------------------------------------------------------------------------------------ learning rate


def test_lora_gets_a_lora_learning_rate_by_default(call_main, tiny_model: Path, chat_data: dict[str, Path]) -> None:  # noqa: ANN001
    """LoRA's B matrices start at zero: at full fine-tuning's 2e-5 the README's example did not learn; unset, the
    LoRA rate is 2e-4, and a run whose loss does not fall says so in one warning line."""
    run = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model), "--lora",
                    "--max-steps", "3", "--logging-steps", "1", "--max-length", "128", "--learning-rate", "1e-7")
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = [line for line in run.stdout.splitlines() if "WARNING: the training loss did not fall" in line]
    assert len(warnings) == 1 and "learning rate 1e-07" in warnings[0]
    params = json.loads(json.dumps(run.metrics))  # the metrics file is plain JSON
    assert params["final"]["train_loss"] > 0


def test_learning_rate_default_follows_lora(fine_tune_module) -> None:  # noqa: ANN001
    required = ["--train-file", "t", "--model-name-or-path", "m", "--output-dir", "o"]
    parser = fine_tune_module.build_parser()
    assert fine_tune_module.resolve_learning_rate(parser.parse_args([*required, "--lora"])) == 2e-4
    assert fine_tune_module.resolve_learning_rate(parser.parse_args(required)) == 2e-5
    assert fine_tune_module.resolve_learning_rate(parser.parse_args([*required, "--lora", "--learning-rate", "1"])) == 1


def test_loss_warning_only_when_the_loss_stays(fine_tune_module) -> None:  # noqa: ANN001
    args = fine_tune_module.build_parser().parse_args(["--train-file", "t", "--model-name-or-path", "m",
                                                       "--output-dir", "o", "--lora", "--learning-rate", "2e-5"])
    assert "LoRA adapters start at zero" in fine_tune_module.loss_warning([6.835, 6.834, 6.833], args)
    assert fine_tune_module.loss_warning([6.8, 5.0, 3.1, 2.9], args) is None
    assert fine_tune_module.loss_warning([6.8], args) is None


def test_assistant_only_is_the_default_where_the_template_can_be_marked(fine_tune_module, tiny_model: Path,
                                                                         full_run) -> None:  # noqa: ANN001
    tokenizer = fine_tune_module.load_tokenizer(str(tiny_model))
    template, loss_on = fine_tune_module.loss_template(tokenizer, None)
    assert template and loss_on == "assistant turns only"
    assert "loss on assistant turns only" in full_run.stdout  # the script's default, in the real run
    assert fine_tune_module.loss_template(tokenizer, False) == (None, "every token")
    tokenizer.chat_template = tokenizer.chat_template.replace("<|end|>", "<|end|> ")  # a template TRL cannot mark
    template, loss_on = fine_tune_module.loss_template(tokenizer, None)
    assert template is None and loss_on.startswith("every token (assistant-only by default, but ")
    with pytest.raises(fine_tune_module.UserInputError, match="--assistant-only-loss: the chat template of "):
        fine_tune_module.loss_template(tokenizer, True)
