"""rules.policy on literal dicts: what prod means, and nothing of it under the default policy."""

from __future__ import annotations

from tools.validate.rules import policy

DEPLOYMENT = {"name": "blue", "endpoint_name": "ep", "model": "azureml:m:1", "instance_type": "Standard_DS3_v2",
              "instance_count": 1}  # fmt: skip


def test_prod_deployment(run_rule) -> None:
    found = {f[2] for f in run_rule(policy.check, DEPLOYMENT, "managedOnlineDeployment", policy="prod")}
    assert found == {"prod-ha", "prod-registry"}
    assert run_rule(policy.check, DEPLOYMENT, "managedOnlineDeployment") == []


def test_prod_pins_versions_and_image_tags(run_rule) -> None:
    env = {"name": "e", "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"}
    assert [f[2] for f in run_rule(policy.check, env, "environment", policy="prod")] == ["prod-pin"]
    job = {"type": "command", "command": "echo", "environment": "azureml:env@latest", "compute": "azureml:gpu"}
    assert [f[0] for f in run_rule(policy.check, job, "commandJob", policy="prod")] == [("environment",)]
