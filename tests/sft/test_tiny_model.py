"""tools/demo/tiny_model.py: a deterministic, loadable tiny Phi-3 chat model built offline."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tools.__main__ import main as tools_main
from tools.demo.tiny_model import CHAT_TOKENS, build_tiny_model


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_loads_with_auto_classes_and_chat_template(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert type(model).__name__ == "Phi3ForCausalLM"
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (64, 2, 4)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.bos_token_id == tokenizer.bos_token_id
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id != tokenizer.eos_token_id
    end_id = tokenizer.convert_tokens_to_ids("<|end|>")
    assert end_id in model.generation_config.eos_token_id
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], tokenize=False
    )
    assert text == "<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n<|endoftext|>"
    for token in CHAT_TOKENS:  # special tokens stay single tokens
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    generated = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


def test_deterministic_and_seeded(tmp_path: Path, tiny_model: Path) -> None:
    again = build_tiny_model(tmp_path / "again", seed=0)
    assert _digest(again) == _digest(tiny_model)
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert _digest(other)["model.safetensors"] != _digest(tiny_model)["model.safetensors"]
    assert _digest(other)["tokenizer.json"] == _digest(tiny_model)["tokenizer.json"]


def test_cli_replaces_the_folder(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "cli-model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert tools_main(["tiny-model", "--out", str(out), "--seed", "3"]) == 0
    assert (out / "config.json").is_file() and not (out / "stale.txt").exists()
    assert str(out) in capsys.readouterr().out
