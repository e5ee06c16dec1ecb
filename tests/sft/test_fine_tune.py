"""fine_tune.py trains for real on CPU and writes an MLflow chat model that reloads with the trained weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


def _loss_curve(metrics: dict) -> list[float]:
    return [row["train_loss"] for row in metrics["history"] if "train_loss" in row]


def test_full_fine_tune_loss_goes_down(full_run) -> None:  # noqa: ANN001
    losses = _loss_curve(full_run.metrics)
    assert len(losses) >= 5
    assert losses[-1] < losses[0] - 0.5, losses
    assert "eval_loss" in full_run.metrics["final"] and "eval_perplexity" in full_run.metrics["final"]
    assert "[fine_tune] step 20/20" in full_run.stdout  # progress lines while training


def test_metrics_are_in_mlflow(full_run) -> None:  # noqa: ANN001
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=full_run.tracking_uri)
    run_id = full_run.metrics["mlflow_run_id"]
    history = client.get_metric_history(run_id, "train_loss")
    assert len(history) >= 5 and history[-1].value < history[0].value
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert {"eval_loss", "train_loss_mean", "train_runtime"} <= set(run.data.metrics)
    assert run.data.params["lr_scheduler"] == "cosine"


def test_mlflow_model_is_a_chat_model_with_pinned_requirements(full_run) -> None:  # noqa: ANN001
    mlmodel = yaml.safe_load((full_run.output_dir / "MLmodel").read_text())
    assert mlmodel["metadata"]["task"] == "llm/v1/chat"
    assert mlmodel["flavors"]["transformers"]["source_model_name"].endswith("tiny-phi3")
    assert '"name": "messages"' in mlmodel["signature"]["inputs"]
    requirements = (full_run.output_dir / "requirements.txt").read_text().split()
    assert any(r.startswith("torch==") for r in requirements)
    assert any(r.startswith("transformers==") for r in requirements)
    assert not any("peft" in r for r in requirements)


def test_pyfunc_generates_a_chat_completion(full_run) -> None:  # noqa: ANN001
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(full_run.output_dir))
    [answer] = model.predict({"messages": [{"role": "user", "content": "Tell me about bread."}], "max_tokens": 6})
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert isinstance(answer["choices"][0]["message"]["content"], str)
    assert answer["usage"]["completion_tokens"] > 0


def _state(model) -> dict:  # noqa: ANN001
    return {k: v.detach().float().clone() for k, v in model.state_dict().items()}


def test_full_model_reloads_with_the_trained_weights(full_run, tiny_model: Path) -> None:  # noqa: ANN001
    import mlflow.transformers
    import torch
    from transformers import AutoModelForCausalLM

    reloaded = _state(mlflow.transformers.load_model(str(full_run.output_dir), return_type="components")["model"])
    trained = _state(AutoModelForCausalLM.from_pretrained(full_run.work_dir / "final"))
    base = _state(AutoModelForCausalLM.from_pretrained(tiny_model))
    assert reloaded.keys() == trained.keys()
    assert all(torch.equal(reloaded[k], trained[k]) for k in trained)
    assert not torch.equal(reloaded["model.layers.0.self_attn.qkv_proj.weight"],
                           base["model.layers.0.self_attn.qkv_proj.weight"])  # fmt: skip


def test_lora_is_merged_and_reloads_with_merged_weights(lora_run, tiny_model: Path) -> None:  # noqa: ANN001
    import mlflow.transformers
    import torch
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    losses = _loss_curve(lora_run.metrics)
    assert losses[-1] < losses[0], losses
    assert (lora_run.work_dir / "final" / "adapter_config.json").is_file()  # training saved only the adapter
    for file in lora_run.output_dir.rglob("*.safetensors"):
        with safe_open(str(file), framework="pt") as handle:
            assert not [k for k in handle.keys() if "lora_" in k]  # noqa: SIM118
    reloaded = _state(mlflow.transformers.load_model(str(lora_run.output_dir), return_type="components")["model"])
    base_model = AutoModelForCausalLM.from_pretrained(tiny_model)
    base = _state(base_model)
    merged = _state(PeftModel.from_pretrained(base_model, lora_run.work_dir / "final").merge_and_unload())
    assert reloaded.keys() == base.keys() == merged.keys()
    for key in merged:
        assert torch.allclose(reloaded[key], merged[key], atol=1e-6), key  # the merged weights, not a re-init
    targets = [k for k in merged if k.endswith(("qkv_proj.weight", "o_proj.weight", "gate_up_proj.weight"))]
    assert targets and all(not torch.equal(merged[k], base[k]) for k in targets)  # LoRA changed them
    untouched = [k for k in merged if "embed_tokens" in k or "norm" in k]
    assert untouched and all(torch.equal(reloaded[k], base[k]) for k in untouched)  # base kept, not random


def test_unmerged_peft_model_is_refused(fine_tune_module, tiny_model: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(r=4, target_modules=["qkv_proj"])
    )
    with pytest.raises(RuntimeError, match="unmerged"):
        fine_tune_module.ensure_merged(peft_model)
    with pytest.raises(RuntimeError, match="LoRA parameters"):
        fine_tune_module.ensure_merged(peft_model.base_model.model)  # adapters injected, wrapper stripped
    merged = fine_tune_module.ensure_merged(peft_model.merge_and_unload())
    out = tmp_path / "mlflow-model"
    fine_tune_module.save_mlflow_model(merged, AutoTokenizer.from_pretrained(tiny_model), out)
    assert (out / "MLmodel").is_file()


def test_help_documents_every_option(fine_tune_module, capsys) -> None:  # noqa: ANN001
    parser = fine_tune_module.build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in parser._actions:
        for flag in action.option_strings:
            assert flag in text
        assert action.help, action.option_strings


def test_padding_free_packing_keeps_conversations_apart(fine_tune_module, tiny_model: Path) -> None:  # noqa: ANN001
    """Best-fit packing flattens conversations into one row with restarting position_ids; with sdpa (no flash-attn)
    transformers must still mask across them, which it only does with the cache off, as our loader sets it."""
    import torch

    model = fine_tune_module.load_model(str(tiny_model), "fp32", "sdpa").eval()
    assert model.config.use_cache is False
    a, b = torch.randint(10, 800, (1, 7)), torch.randint(10, 800, (1, 5))
    positions = torch.cat([torch.arange(7), torch.arange(5)])[None]
    with torch.no_grad():
        packed = model(torch.cat([a, b], 1), position_ids=positions).logits
        alone_a, alone_b = model(a).logits, model(b).logits
    assert torch.allclose(packed[:, :7], alone_a, atol=1e-5)
    assert torch.allclose(packed[:, 7:], alone_b, atol=1e-5)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [([], True), (["--packing"], True), (["--no-packing"], False), (["--packing", "False"], False),
     (["--packing", "true"], True)],  # fmt: skip
)
def test_boolean_options_take_azure_rendered_values(fine_tune_module, extra: list[str], expected: bool) -> None:  # noqa: ANN001
    """Azure ML renders boolean inputs as True/False, so `--packing ${{inputs.packing}}` must parse."""
    required = ["--train-file", "t", "--model-name-or-path", "m", "--output-dir", "o"]
    assert fine_tune_module.build_parser().parse_args(required + extra).packing is expected
