"""rules.catalog on literal dicts: a cluster, a serverless instance type or a deployment on a retired VM size.

The SKU table is the active repo's; these tests read the facts through it (NC24rs_v3 and NCv3 are recorded retired,
NC24ads_A100_v4 active) and a copy with a future retirement date for the warning."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import yaml

from tools.core.repo import REPO_ROOT, active, select
from tools.validate.rules import catalog

RETIRED, ACTIVE = "Standard_NC24rs_v3", "Standard_NC24ads_A100_v4"
CONTRACT = "azureml://registries/azureml/components/chat_completion_pipeline/versions/"


def test_the_table_records_the_sizes_these_tests_use() -> None:
    assert catalog.retirement(RETIRED)[0] == "error"
    assert catalog.retirement(ACTIVE) is None
    assert catalog.retirement("Standard_Unknown") is None and catalog.retirement("${{parent.inputs.x}}") is None


def test_a_cluster_on_a_retired_size(run_rule) -> None:
    data = {"type": "amlcompute", "name": "gpu", "size": RETIRED.lower()}  # Azure compares sizes case-insensitively
    found = [f for f in run_rule(catalog.check, data, kind="amlCompute") if f[2] == "retired-sku"]
    assert [(f[0], f[1]) for f in found] == [(("size",), "error")]
    assert "was retired on 2025-03-31" in found[0][3] and "a cluster on it fails" in found[0][3]
    assert not [
        f for f in run_rule(catalog.check, {**data, "size": ACTIVE}, kind="amlCompute") if f[2] == "retired-sku"
    ]


def test_a_deployment_on_a_retired_size(run_rule) -> None:
    data = {"name": "blue", "endpoint_name": "chat", "model": "azureml:m:1", "instance_type": "Standard_NC6s_v3"}
    found = [f for f in run_rule(catalog.check, data, kind="managedOnlineDeployment") if f[2] == "retired-sku"]
    assert [(f[0], f[1]) for f in found] == [(("instance_type",), "error")]


def test_serverless_instance_types_given_bound_or_defaulted(run_rule) -> None:
    version = active().contract()["version"]
    data = {"type": "pipeline",
            "inputs": {"instance_type_finetune": {"type": "string", "default": RETIRED}},
            "jobs": {"ft": {"component": CONTRACT + str(version),
                            "inputs": {"compute_finetune": "serverless",
                                       "instance_type_finetune": "${{parent.inputs.instance_type_finetune}}",
                                       "compute_model_evaluation": "serverless",
                                       "instance_type_preprocess": "Standard_NC24s_v3"}},
                     "cmd": {"type": "command", "command": "echo",
                             "resources": {"instance_type": RETIRED}}}}  # fmt: skip
    found = {f[0]: f for f in run_rule(catalog.check, data, kind="pipelineJob") if f[2] == "retired-sku"}
    assert set(found) >= {("inputs", "instance_type_finetune", "default"),
                          ("jobs", "ft", "inputs", "instance_type_preprocess"),
                          ("jobs", "cmd", "resources", "instance_type")}  # fmt: skip
    # chat_completion_pipeline 0.0.82 defaults instance_type_model_evaluation to Standard_nc24rs_v3, retired:
    # a serverless stage that leaves it unset runs on it
    assert catalog.retirement(active().contract()["inputs"]["instance_type_model_evaluation"]["default"])
    assert "the component's default instance_type_model_evaluation" in found[("jobs", "ft", "inputs")][3]
    assert all(f[1] == "error" for f in found.values())


def test_a_component_default_is_a_warning(run_rule) -> None:
    data = {"type": "command", "command": "echo", "inputs": {"instance_type_x": {"type": "string", "default": RETIRED}}}
    [found] = [f for f in run_rule(catalog.check, data, kind="commandComponent") if f[2] == "retired-sku"]
    assert found[1] == "warning"


def test_a_future_retirement_is_a_warning_and_retired_true_an_error(tmp_path: Path, run_rule) -> None:
    shutil.copytree(REPO_ROOT / "schemas", tmp_path / "schemas")
    table = yaml.safe_load((tmp_path / "schemas/catalog/skus.yaml").read_text())
    ahead = (datetime.date.today() + datetime.timedelta(days=365)).isoformat()
    table["skus"][ACTIVE] = {**table["skus"][ACTIVE], "retired_on": ahead}
    table["skus"]["Standard_DS3_v2"] = {**table["skus"]["Standard_DS3_v2"], "retired": True}
    (tmp_path / "schemas/catalog/skus.yaml").write_text(yaml.safe_dump(table))
    try:
        select(tmp_path)
        assert catalog.retirement(ACTIVE)[:2] == ("warning", ahead)
        assert catalog.retirement("Standard_DS3_v2")[0] == "error"
    finally:
        select(None)
