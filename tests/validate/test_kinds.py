"""Every kind in schemas/kinds.yaml is recognised from each published `$schema` form and from `type:` without one;
Prompt flow and other non-az-ml files are skipped with the reason (never an error for being unknown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.core.repo import kinds
from tools.validate.document import parse_spec
from tools.validate.kind import infer_kind, read_schema_line
from tools.validate.layers import validate_specs


@pytest.mark.parametrize("kind", sorted(kinds()))
def test_each_published_url_form_names_the_kind(kind: str) -> None:
    name = kinds()[kind]["file"]
    for prefix in ("https://azuremlschemas.azureedge.net/latest/", "https://azuremlschemasprod.azureedge.net/latest/"):
        assert read_schema_line(prefix + name).kinds == (kind,)
    for sdk_name in kinds()[kind].get("sdk_names") or []:
        assert kind in read_schema_line(f"http://azureml/sdk-2-0/{sdk_name}.json").kinds


def test_automl_preview_url() -> None:
    url = "https://azuremlsdk2.blob.core.windows.net/preview/0.0.1/autoMLJob.schema.json"
    assert read_schema_line(url).kinds == ("autoMLJob",) and read_schema_line(url).known_prefix


@pytest.mark.parametrize(("data", "kind"), [
    ({"type": "finetuning", "model_provider": "custom", "task": "chat_completion"}, "finetuningJob"),
    ({"type": "distillation"}, "distillationJob"),
    ({"type": "sweep"}, "sweepJob"),
    ({"type": "azure_blob", "account_name": "a", "container_name": "c"}, "azureBlob"),
    ({"type": "model", "endpoint_name": "e"}, "modelBatchDeployment"),
    ({"endpoint_name": "e", "instance_type": "Standard_DS3_v2"}, "managedOnlineDeployment"),
    ({"endpoint_name": "e", "mini_batch_size": 10, "output_action": "append_row"}, "batchDeployment"),
    ({"trigger": {"type": "cron", "expression": "0 0 * * *"}, "create_job": "./job.yml"}, "schedule"),
    ({"name": "r", "replication_locations": [{"location": "eastus"}]}, "registry"),
    ({"type": "command", "command": "echo", "compute": "c"}, "commandJob"),
])  # fmt: skip
def test_kind_from_type_and_keys_without_schema(data: dict, kind: str) -> None:
    assert infer_kind(data) == kind


FINETUNE = """\
type: finetuning
model_provider: custom
task: chat_completion
model: {type: mlflow_model, path: azureml://registries/azureml/models/Phi-4/versions/8}
training_data: {type: uri_file, path: azureml:train:1}
outputs: {registered_model: {name: ft, type: mlflow_model}}
"""


def test_finetuning_job_without_schema_line_validates(tmp_path: Path) -> None:
    path = tmp_path / "ft.yml"
    path.write_text(FINETUNE)
    spec = parse_spec(path, "ft.yml")
    assert spec.kind == "finetuningJob"
    report = validate_specs([spec], "ABCD")
    assert [f.text() for f in report.findings if f.severity == "error"] == []


@pytest.mark.parametrize("url", ["https://azuremlschemas.azureedge.net/promptflow/latest/Flow.schema.json",
                                 "https://azuremlschemas.azureedge.net/promptflow/latest/Run.schema.json"])
def test_prompt_flow_files_are_skipped_not_unknown(tmp_path: Path, url: str) -> None:
    path = tmp_path / "flow.yml"
    path.write_text(f"$schema: {url}\nnodes: []\n")
    report = validate_specs([parse_spec(path, "flow.yml")])
    assert report.findings == [] and report.statuses[0].status == "skipped" and "pf" in report.statuses[0].reason
