"""rules.uris on literal dicts: well-formed azureml references pass, malformed ones name the key."""

from __future__ import annotations

from tools.validate.rules import uris

PIPELINE = "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json"


def test_well_formed_references_pass(run_rule) -> None:
    data = {"$schema": PIPELINE, "type": "pipeline", "jobs": {"a": {
        "component": "azureml://registries/azureml/components/x/versions/1",
        "inputs": {"m": {"path": "azureml://registries/azureml/models/phi/labels/latest"},
                   "d": {"path": "azureml://datastores/workspaceblobstore/paths/a/b.jsonl"},
                   "j": {"path": "azureml://jobs/job_1/outputs/out"}}}}}  # fmt: skip
    assert run_rule(uris.check, data) == []


def test_malformed_registry_uri_names_the_key(run_rule) -> None:
    data = {"type": "pipeline", "jobs": {"a": {"component": "azureml://registries/azureml/x/1"}}}
    (found,) = run_rule(uris.check, data, kind="pipelineJob")
    assert found[:3] == (("jobs", "a", "component"), "error", "registry-uri")


def test_malformed_workspace_asset_reference(run_rule) -> None:
    data = {"type": "command", "command": "echo", "environment": "azureml:my env:1"}
    assert [f[2] for f in run_rule(uris.check, data, kind="commandJob")] == ["asset-ref"]
