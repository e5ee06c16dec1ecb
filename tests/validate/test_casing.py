"""Enums azure-ai-ml compares after a casing transform (tools.validate.casing): layer C accepts every spelling the
SDK accepts (snake_case for camelCase, any case for lower-cased enums) and still rejects what it rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.validate import casing
from tools.validate.document import parse_spec
from tools.validate.findings import ERROR
from tools.validate.layers import validate_specs

BASE = "https://azuremlschemas.azureedge.net/latest/"
SAMPLES = ("chat_completion", "chatCompletion", "ChatCompletion", "LOW_PRIORITY", "LowPriority", "a, b_c", "Key",
           "text_ner", "UserIdentity", "AMLToken", "")


def _errors(tmp_path: Path, text: str, layers: str = "ACD") -> list[str]:
    path = tmp_path / "spec.yml"
    path.write_text(text)
    return [f.text() for f in validate_specs([parse_spec(path, "spec.yml")], layers).findings if f.severity == ERROR]


def test_replicas_are_the_sdk_functions() -> None:
    from azure.ai.ml._utils.utils import camel_to_snake, snake_to_camel, snake_to_pascal

    sdk = {"camel_to_snake": camel_to_snake, "snake_to_camel": snake_to_camel, "snake_to_pascal": snake_to_pascal,
           "lower": str.lower, "upper": str.upper}
    for name, function in sdk.items():
        for sample in SAMPLES:
            assert casing.TRANSFORMS[name](sample) == (function(sample) or ""), (name, sample)
        assert casing.classify(function) == name
    assert casing.classify(lambda x: x) is None
    with pytest.raises(ValueError, match="none of"):
        casing.classify(lambda x: x[::-1])


FINETUNING = """\
type: finetuning
name: ft-demo
experiment_name: ft
task: {task}
model_provider: custom
model: {{type: mlflow_model, path: azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/14}}
training_data: {{type: uri_file, path: azureml://datastores/workspaceblobstore/paths/train.jsonl}}
"""


def test_finetuning_task_in_snake_case_is_what_the_sdk_converts(tmp_path: Path) -> None:
    assert _errors(tmp_path, FINETUNING.format(task="chat_completion")) == []
    assert _errors(tmp_path, FINETUNING.format(task="chatCompletion")) == []
    wrong = _errors(tmp_path, FINETUNING.format(task="chat_completions"))
    assert len(wrong) == 1 and "task: expected one of [chatCompletion" in wrong[0], wrong


def test_enums_the_sdk_lower_cases_or_snake_cases(tmp_path: Path) -> None:
    cluster = f"$schema: {BASE}amlCompute.schema.json\nname: cpu-cluster\ntype: amlcompute\nsize: Standard_DS3_v2\n"
    assert _errors(tmp_path, cluster + "tier: Low_Priority\n") == []  # lower-cased: low_priority
    assert _errors(tmp_path, cluster + "tier: DEDICATED\n") == []
    assert any("tier" in line for line in _errors(tmp_path, cluster + "tier: LowPriority\n"))  # the SDK rejects it
    endpoint = f"$schema: {BASE}managedOnlineEndpoint.schema.json\nname: my-endpoint\nauth_mode: {{mode}}\n"
    assert _errors(tmp_path, endpoint.format(mode="AMLToken")) == []  # camel_to_snake: aml_token
    assert any("auth_mode" in line for line in _errors(tmp_path, endpoint.format(mode="tokens")))


def test_respell_only_rewrites_to_an_allowed_spelling() -> None:
    names = {"task": [("snake_to_camel", frozenset({"chatCompletion"})), (None, frozenset({"chat_completion_x"}))]}
    data = {"task": "chat_completion", "jobs": {"a": {"task": "chat_completion_x"}}, "other": "chat_completion"}
    before = repr(data)
    respelled = casing.respell(data, names)
    assert respelled == {"task": "chatCompletion", "jobs": {"a": {"task": "chat_completion_x"}},
                         "other": "chat_completion"}
    assert repr(data) == before and respelled["jobs"] is data["jobs"]  # the spec's data is not touched
    assert casing.respell(respelled, names) is respelled  # nothing to rewrite: no copy
