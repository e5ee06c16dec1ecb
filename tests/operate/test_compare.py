"""compare.py on literal dicts: what `show` returns against what a spec says, on the spec's keys only, after the
normalisations Azure applies (`az ml ... show -o yaml` output): long ARM ids for `azureml:name:version`, enum casing,
upper-cased VM sizes, server-filled keys."""

from __future__ import annotations

from tools.operate.compare import diff_text, differing_keys, normalise

SCOPE = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w"
DEPLOYMENT = {
    "$schema": "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json",
    "name": "blue",
    "endpoint_name": "e",
    "model": "azureml:phi3:2",
    "instance_type": "Standard_NC24ads_A100_v4",
    "instance_count": 1,
    "request_settings": {"request_timeout_ms": 90000},
}
LIVE = {
    "name": "green",  # the colour differs during blue/green: not compared
    "endpoint_name": "e",
    "model": f"{SCOPE}/models/phi3/versions/2",
    "instance_type": "STANDARD_NC24ADS_A100_V4",
    "instance_count": 1,
    "request_settings": {"request_timeout_ms": 90000, "max_concurrent_requests_per_instance": 1},
    "id": f"{SCOPE}/onlineEndpoints/e/deployments/green",
    "provisioning_state": "Succeeded",
    "type": "managed",
}


def test_arm_ids_and_short_ids_name_the_same_asset() -> None:
    assert normalise("model", f"{SCOPE}/models/phi3/versions/2") == normalise("model", "azureml:phi3:2")
    assert normalise("model", f"azureml:{SCOPE}/models/phi3/versions/2") == "azureml:phi3:2"
    assert normalise("model", f"{SCOPE}/models/phi3/versions/3") != normalise("model", "azureml:phi3:2")
    registry = "azureml://registries/Contoso/models/phi3/versions/2"
    assert normalise("model", registry) == normalise("model", registry.lower())


def test_enum_casing_sizes_and_versions() -> None:
    assert normalise("auth_mode", "Key") == normalise("auth_mode", "key")
    assert normalise("size", "STANDARD_NC24ADS_A100_V4") == normalise("size", "Standard_NC24ads_A100_v4")
    assert normalise("version", 1) == normalise("version", "1")
    assert normalise("display_name", "Blue") != normalise("display_name", "blue")  # not an enum: case counts
    assert normalise("instance_count", 1) == 1 and normalise("enabled", True) is True


def test_server_filled_keys_and_the_colour_are_ignored() -> None:
    assert differing_keys("managedOnlineDeployment", DEPLOYMENT, LIVE) == []
    assert diff_text("managedOnlineDeployment", DEPLOYMENT, LIVE, "endpoints/deployment.yml") == ""


def test_a_changed_value_is_named_and_diffed() -> None:
    live = {**LIVE, "instance_count": 3, "model": f"{SCOPE}/models/phi3/versions/1"}
    assert differing_keys("managedOnlineDeployment", DEPLOYMENT, live) == ["model", "instance_count"]
    text = diff_text("managedOnlineDeployment", DEPLOYMENT, live, "d.yml")
    assert "--- d.yml (rendered)\n+++ d.yml (azure)\n" in text
    assert "-instance_count: 1\n+instance_count: 3\n" in text and "+model: azureml:phi3:1\n" in text


def test_a_key_the_service_lacks_and_extra_list_items_differ() -> None:
    live = {k: v for k, v in LIVE.items() if k != "request_settings"}
    assert differing_keys("managedOnlineDeployment", DEPLOYMENT, live) == ["request_settings"]
    spec = {"name": "c", "size": "Standard_D4s_v3", "tags": {"a": "1"}, "zones": ["1"]}
    assert differing_keys("amlCompute", spec, {**spec, "zones": ["1", "2"]}) == ["zones"]
    assert differing_keys("amlCompute", spec, {**spec, "tags": {"a": "1", "added_by_azure": "x"}}) == []


def test_local_paths_azure_uploads_are_not_compared() -> None:
    model = {"name": "phi3", "version": 2, "path": "./outputs/model", "type": "mlflow_model"}
    live = {"name": "phi3", "version": "2", "type": "mlflow_model", "path": "azureml://datastores/x/paths/y"}
    assert differing_keys("model", model, live) == []
