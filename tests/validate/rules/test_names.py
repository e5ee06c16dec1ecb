"""rules.names on literal dicts: Azure's name limits, and the clusters jobs name resolved against the run."""

from __future__ import annotations

from tools.validate.rules import names

CLUSTER = {"$schema": "https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json", "type": "amlcompute",
           "name": "gpu-a100", "size": "Standard_NC24ads_A100_v4"}  # fmt: skip


def test_compute_names_within_the_documented_limits(run_rule) -> None:
    assert run_rule(names.check, {**CLUSTER, "name": "gpu-cluster-a100-v4-east"}, kind="amlCompute") == []  # 24
    for bad in ("g", "gpu-cluster-a100-v4-east1", "1gpu", "gpu_a100"):
        [found] = run_rule(names.check, {**CLUSTER, "name": bad}, kind="amlCompute")
        assert found[0] == ("name",) and found[2] == "name" and "2-24 characters" in found[3]


def test_endpoint_and_deployment_names(run_rule) -> None:
    data = {"name": "blue", "endpoint_name": "ab", "model": "azureml:m:1", "instance_type": "Standard_DS3_v2"}
    [found] = run_rule(names.check, data, kind="managedOnlineDeployment")
    assert found[0] == ("endpoint_name",) and "3-32 characters" in found[3]
    assert run_rule(names.check, {"name": "e" * 33, "auth_mode": "key"}, kind="managedOnlineEndpoint")
    assert run_rule(names.check, {"name": "chat-endpoint-", "auth_mode": "key"}, kind="managedOnlineEndpoint")


def test_asset_names(run_rule) -> None:
    assert run_rule(names.check, {"name": "ultrachat.train_v2-sft", "type": "uri_file", "path": "x"}, kind="data") == []
    [found] = run_rule(names.check, {"name": "-train", "type": "uri_file", "path": "x"}, kind="data")
    assert found[0] == ("name",) and found[2] == "name"


def pipeline_step(**inputs: object) -> dict:
    return {"type": "pipeline", "jobs": {"ft": {"component": "azureml://registries/azureml/components/c/versions/1",
                                                "compute": "azureml:gpu-a100", "inputs": inputs}}}  # fmt: skip


def test_a_typo_in_compute_finetune_names_the_known_clusters(run_rule) -> None:
    found = run_rule(names.check, pipeline_step(compute_finetune="gpu-a10"), kind="pipelineJob", others=[CLUSTER],
                     workspace="dev")  # fmt: skip
    assert [(f[0], f[1], f[2]) for f in found] == [(("jobs", "ft", "inputs", "compute_finetune"), "error", "compute")]
    assert "did you mean gpu-a100?" in found[0][3] and "known clusters: gpu-a100" in found[0][3]


def test_known_cluster_serverless_and_bindings_pass(run_rule) -> None:
    data = pipeline_step(compute_finetune="gpu-a100", compute_preprocess="serverless",
                         compute_model_import="${{parent.inputs.compute}}")  # fmt: skip
    assert run_rule(names.check, data, kind="pipelineJob", others=[CLUSTER]) == []


def test_a_typo_in_a_step_compute_and_in_a_pipeline_input_default(run_rule) -> None:
    data = pipeline_step()
    data["jobs"]["ft"]["compute"] = "azureml:gpu-a1000"
    data["inputs"] = {"compute_finetune": {"type": "string", "default": "gpu_a100"}}
    found = {f[0]: f for f in run_rule(names.check, data, kind="pipelineJob", others=[CLUSTER], workspace="dev")}
    assert found[("jobs", "ft", "compute")][1] == "error"
    assert found[("inputs", "compute_finetune", "default")][1] == "error"


def test_in_a_workspace_an_unknown_cluster_is_an_error_even_without_a_near_miss(run_rule) -> None:
    data = {"type": "command", "command": "echo", "compute": "azureml:cpu-cluster"}
    [found] = run_rule(names.check, data, kind="commandJob", others=[CLUSTER], workspace="dev")
    assert found[1:3] == ("error", "compute") and "workspace dev" in found[3]


def test_outside_a_workspace_a_near_miss_cluster_is_a_warning(run_rule) -> None:
    """Issue 19 point 10: a cluster is often created outside YAML, so outside a rendered workspace (whose values
    declare the clusters) even a near miss may be the workspace's own: a warning that names it."""
    [found] = run_rule(names.check, pipeline_step(compute_finetune="gpu-a10"), kind="pipelineJob", others=[CLUSTER])
    assert found[1:3] == ("warning", "compute") and "did you mean gpu-a100?" in found[3]


def test_an_unrelated_cluster_name_is_a_warning_and_nothing_is_checked_without_known_clusters(run_rule) -> None:
    data = {"type": "command", "command": "echo", "compute": "azureml:cpu-cluster"}
    [found] = run_rule(names.check, data, kind="commandJob", others=[CLUSTER])
    assert found[1] == "warning" and "gpu-a100" in found[3]
    assert run_rule(names.check, data, kind="commandJob") == []


def test_cluster_names_from_arm_ids() -> None:
    assert names.cluster_name("azureml:/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/"
                              "workspaces/w/computes/gpu-a100") == "gpu-a100"  # fmt: skip
    assert names.cluster_name("serverless") is None and names.cluster_name("local") is None


def test_feature_store_names_follow_the_workspace_and_asset_rules(run_rule) -> None:
    """A feature store is a workspace (3-33 characters); its feature sets and entities are assets."""
    assert run_rule(names.check, {"name": "my_fs-01", "location": "eastus"}, kind="featureStore") == []
    [found] = run_rule(names.check, {"name": "bad name!", "location": "eastus"}, kind="featureStore")
    assert found[0] == ("name",) and "3-33 characters" in found[3]
    for kind in ("featureSet", "featureStoreEntity"):
        assert run_rule(names.check, {"name": "transactions.v2", "version": "1"}, kind=kind) == []
        [found] = run_rule(names.check, {"name": "bad name!", "version": "1"}, kind=kind)
        assert found[0] == ("name",) and found[2] == "name"


def test_clusters_of_another_project_say_nothing_about_this_one(run_rule, tmp_path) -> None:
    """Issue 19 point 10: specs of unrelated projects validated together; a compute spec counts only for the specs
    of its own project (the folder above the compute spec's folder)."""
    from tools.validate.document import spec_from_dict
    from tools.validate.rules.support import RuleContext

    job = spec_from_dict({"type": "command", "command": "echo", "compute": "azureml:gpu-a10"}, "commandJob",
                         tmp_path / "mine" / "jobs" / "train.yml")  # fmt: skip
    theirs = spec_from_dict(CLUSTER, "amlCompute", tmp_path / "theirs" / "compute" / "cluster.yml")
    ours = spec_from_dict({**CLUSTER, "name": "cpu"}, "amlCompute", tmp_path / "mine" / "compute" / "cluster.yml")
    found: list[tuple] = []
    names.check(job, lambda *a, **k: found.append((a, k)), RuleContext([job, theirs]))
    assert found == []  # nothing known in this project: nothing to check
    names.check(job, lambda key, message, severity="error", rule="": found.append((severity, message)),
                RuleContext([job, theirs, ours]))
    [(severity, message)] = found
    assert severity == "warning" and "gpu-a100" not in message and "cpu" in message
