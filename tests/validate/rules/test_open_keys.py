"""rules.open_keys: a near-miss of a declared key where azure-ai-ml takes any key is an error; other extras are not."""

from __future__ import annotations

from tools.validate.rules import open_keys

COMPONENT = {"$schema": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
             "type": "command", "name": "c", "command": "echo", "environment": "azureml:env:1"}  # fmt: skip


def test_a_typo_in_component_resources_is_named_with_the_key_it_meant(run_rule) -> None:
    [found] = run_rule(open_keys.check, {**COMPONENT, "resources": {"instance_coutn": 2}}, kind="commandComponent")
    assert found[0] == ("resources", "instance_coutn") and found[2] == "open-key"
    assert "did you mean 'instance_count'" in found[3]


def test_declared_keys_and_unrelated_extras_pass(run_rule) -> None:
    """ComponentResourceSchema is `unknown = INCLUDE`: an extra key the SDK lets through on purpose is no error."""
    resources = {"instance_count": 2, "shm_size": "1g", "priority": "high", "custom_setting": 1}
    assert run_rule(open_keys.check, {**COMPONENT, "resources": resources}, kind="commandComponent") == []


def test_the_table_is_read_from_the_exported_schema() -> None:
    schema = {"definitions": {
        "Root": {"properties": {"resources": {"$ref": "#/definitions/Open"}, "strict": {"$ref": "#/definitions/Shut"}}},
        "Open": {"additionalProperties": True, "properties": {"instance_count": {"type": "integer"}}},
        "Shut": {"additionalProperties": False, "properties": {"instance_count": {"type": "integer"}}}}}
    open_by_name, known = open_keys.table(schema)
    assert open_by_name == {"resources": frozenset({"instance_count"})}
    assert {"resources", "strict", "instance_count"} <= known
