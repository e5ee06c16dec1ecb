"""Each class of false error found on public specs (issue 10, scope 2 and 3), pinned on a few lines of our own YAML:
what Azure accepts gets no error; where a warning or note is right, it says why."""

from __future__ import annotations

from pathlib import Path

from tools.validate.document import parse_spec
from tools.validate.findings import ERROR
from tools.validate.layers import validate_specs

BASE = "https://azuremlschemas.azureedge.net/latest/"
PIPELINE = f"$schema: {BASE}pipelineJob.schema.json\ntype: pipeline\n"


def _check(tmp_path: Path, text: str, layers: str = "ACD", policy: str = "default", name: str = "spec.yml"):
    path = tmp_path / name
    path.write_text(text)
    return validate_specs([parse_spec(path, name)], layers, policy).findings


def _errors(findings) -> list[str]:
    return [f.text() for f in findings if f.severity == ERROR]


def test_registry_component_without_version_is_a_warning_and_an_error_under_prod(tmp_path: Path) -> None:
    text = PIPELINE + "jobs:\n  a:\n    type: command\n    component: azureml://registries/azureml/components/x\n"
    findings = _check(tmp_path, text)
    assert _errors(findings) == [] and any(f.rule == "registry-unpinned" for f in findings)
    assert any("prod policy: pin a version" in line for line in _errors(_check(tmp_path, text, policy="prod")))


def test_registry_component_without_contract_is_a_note(tmp_path: Path) -> None:
    text = PIPELINE + ("jobs:\n  a:\n    type: command\n"
                       "    component: azureml://registries/azureml/components/not_ours/versions/1\n"
                       "    inputs: {anything: 1}\n")  # fmt: skip
    findings = _check(tmp_path, text)
    assert _errors(findings) == []
    assert [f.severity for f in findings if f.rule == "contract"] == ["note"]


def test_step_whose_component_is_a_flow(tmp_path: Path) -> None:
    (tmp_path / "flow.dag.yaml").write_text("inputs: {question: {type: string}}\nnodes: []\n")
    text = PIPELINE + "jobs:\n  ask:\n    type: parallel\n    component: ./flow.dag.yaml\n    inputs: {question: hi}\n"
    assert [f for f in _check(tmp_path, text, "D") if f.rule.startswith("contract")] == []


def test_enum_azure_compares_case_insensitively(tmp_path: Path) -> None:
    text = f"$schema: {BASE}managedOnlineEndpoint.schema.json\nname: my-endpoint\nauth_mode: Key\n"
    assert _errors(_check(tmp_path, text, "ABCD")) == []


COMPONENT = f"""\
$schema: {BASE}commandComponent.schema.json
name: train
version: "1"
type: command
inputs:
  flag: {{type: boolean, default: false}}
  label: {{type: string, default: a}}
command: echo ${{{{inputs.flag}}}} ${{{{inputs.label}}}}
environment: azureml:env:1
"""


def test_boolean_inputs_given_as_true_false_strings_and_coerced_types(tmp_path: Path) -> None:
    (tmp_path / "train.yml").write_text(COMPONENT)
    text = PIPELINE + ("jobs:\n  t:\n    type: command\n    component: ./train.yml\n"
                       "    inputs: {flag: 'True', label: 5}\n")  # fmt: skip
    assert [f.text() for f in _check(tmp_path, text, "D") if f.rule.startswith("contract")] == []


def test_expression_where_the_exported_schema_wants_a_number(tmp_path: Path) -> None:
    text = PIPELINE + ("inputs: {n: 2}\njobs:\n  a:\n    type: command\n    command: echo\n"
                       "    environment: azureml:env:1\n"
                       "    resources: {instance_count: '${{parent.inputs.n}}'}\n")  # fmt: skip
    assert [f for f in _check(tmp_path, text, "C") if "instance_count" in f.key] == []


def test_exported_schema_stricter_than_the_sdk_defers_to_it(tmp_path: Path) -> None:
    # a control-flow node the exported union does not list; azure-ai-ml loads it (layer B is the authority)
    text = f"$schema: {BASE}environment.schema.json\nname: e\nversion: '1'\nimage: mcr.microsoft.com/a:1\n"
    assert _errors(_check(tmp_path, text, "ABC")) == []


def test_fields_given_on_the_command_line_are_a_warning_naming_the_flag(tmp_path: Path) -> None:
    text = (f"$schema: {BASE}managedOnlineDeployment.schema.json\nmodel: azureml:m:1\n"
            "instance_type: Standard_DS3_v2\ninstance_count: 1\n")  # fmt: skip
    findings = _check(tmp_path, text, "ABC")
    assert _errors(findings) == []
    assert any("--endpoint-name" in f.message and f.severity == "warning" for f in findings)


def test_unfilled_placeholder_is_one_error_without_cascade(tmp_path: Path) -> None:
    text = f"$schema: {BASE}managedOnlineEndpoint.schema.json\nname: \"{{{{ENDPOINT_NAME}}}}\"\nauth_mode: kee\n"
    findings = _check(tmp_path, text, "ABCD")
    assert len(_errors(findings)) == 1 and "{{ENDPOINT_NAME}}" in _errors(findings)[0]
    angle = f"$schema: {BASE}data.schema.json\nname: d\npath: azureml://subscriptions/<SUBSCRIPTION_ID>/x\n"
    assert ["<SUBSCRIPTION_ID>" in line for line in _errors(_check(tmp_path, angle, "ABCD"))] == [True]


def test_prompt_templates_in_inputs_are_not_placeholders(tmp_path: Path) -> None:
    text = PIPELINE + "inputs:\n  pattern: 'Q: {{question}} A:'\n  answer: '{{answer}}'\njobs: {}\n"
    assert [f for f in _check(tmp_path, text, "A") if f.rule == "placeholder"] == []


def test_unquoted_mustache_placeholder_is_one_placeholder_error_not_a_yaml_error(tmp_path: Path) -> None:
    text = f"$schema: {BASE}managedOnlineEndpoint.schema.json\nname: {{{{ENDPOINT_NAME}}}}\nauth_mode: key\n"
    findings = _check(tmp_path, text, "ABCD")
    assert [(f.line, f.rule) for f in findings] == [(2, "placeholder")]
    assert "{{ENDPOINT_NAME}}" in findings[0].message


def test_angle_placeholders_in_any_position_are_named_in_one_error(tmp_path: Path) -> None:
    text = (f"$schema: {BASE}amlCompute.schema.json\nname: cpu\ntype: amlcompute\nsize: Standard_DS3_v2\n"
            "max_instances: <MAX_NODES>\n<EXTRA_KEY>: 1\nidentity: {type: user_assigned, user_assigned_identities: "
            "[{resource_id: /subscriptions/<SUBSCRIPTION_ID>/x}]}\n")  # fmt: skip
    findings = _check(tmp_path, text, "ABCD")
    assert len(findings) == 1 and findings[0].rule == "placeholder"
    assert all(name in findings[0].message for name in ("<MAX_NODES>", "<EXTRA_KEY>", "<SUBSCRIPTION_ID>"))


def test_exported_schemas_take_bindings_where_a_pipeline_step_does() -> None:
    """The export replays azure-ai-ml's step patch (support_data_binding_expression_for_fields): the settings of a
    step with a component take `${{...}}` in the schema itself (so editors do not flag it either), a plain wrong
    value is still named by its own type, `type` stays a discriminator, and a standalone job takes no binding (the
    SDK rejects it there, as it does in an inline `command:` step, which it loads as a job, not a node)."""
    from tools.validate.schema import validate_against_schema

    def step(**resources: object) -> dict:
        return {"type": "pipeline", "inputs": {"n": 2},
                "jobs": {"a": {"type": "command", "component": {"command": "echo", "environment": "azureml:env:1"},
                               "compute": "${{parent.inputs.c}}", "resources": resources}}}  # fmt: skip

    assert validate_against_schema("pipelineJob", step(instance_count="${{parent.inputs.n}}")) == []
    wrong = validate_against_schema("pipelineJob", step(instance_count="abc"))
    assert [(i.key_path, i.message) for i in wrong] == [
        (("jobs", "a", "resources", "instance_count"), "expected integer, got string 'abc'")]
    typed = step()
    typed["jobs"]["a"]["type"] = "${{parent.inputs.t}}"
    assert [i.key_path for i in validate_against_schema("pipelineJob", typed)] == [("jobs", "a", "type")]
    standalone = {"type": "command", "command": "echo", "environment": "azureml:env:1",
                  "resources": {"instance_count": "${{inputs.n}}"}}  # fmt: skip
    assert [i.key_path for i in validate_against_schema("commandJob", standalone)] == [("resources", "instance_count")]


def test_a_misspelt_key_holding_an_expression_is_still_a_typo(tmp_path: Path) -> None:
    """C's objections to `${{...}}` values are dropped (Azure resolves them), but not a near-miss key's: the value
    does not make `process_count_per_instanec` a key Azure knows."""
    text = PIPELINE + ("inputs: {n: 2}\njobs:\n  a:\n    type: command\n"
                       "    component: {command: echo, environment: 'azureml:env:1'}\n"
                       "    distribution:\n      type: pytorch\n"
                       "      process_count_per_instanec: '${{parent.inputs.n}}'\n")  # fmt: skip
    errors = [f for f in _check(tmp_path, text) if f.severity == ERROR]
    assert [f.key_path for f in errors] == [("jobs", "a", "distribution", "process_count_per_instanec")], errors
    assert "did you mean 'process_count_per_instance'" in errors[0].message


DATA_COMPONENT = ("$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json\ntype: command\n"
             "name: read_data\ninputs:\n  folder: {type: uri_folder}\n  table: {type: mltable}\n"
             "environment: azureml:env:1\ncommand: echo ${{inputs.folder}} ${{inputs.table}}\n")  # fmt: skip


def _step(tmp_path: Path, inputs: str, top: str = "") -> list:
    (tmp_path / "component.yml").write_text(DATA_COMPONENT)
    text = PIPELINE + top + f"jobs:\n  read:\n    type: command\n    component: ./component.yml\n    inputs:\n{inputs}"
    return [f for f in _check(tmp_path, text, "D") if f.rule == "contract-type"]


def test_a_data_input_of_another_data_type_is_a_warning(tmp_path: Path) -> None:
    """Issue 19 point 10: Azure's published pipeline samples bind a web-URL uri_file to a uri_folder input and a
    uri_folder asset to an mltable input, and they run: Azure delivers the path as the type the step declares."""
    direct = _step(tmp_path, "      folder: {type: uri_file, path: 'https://example.org/data.csv'}\n")
    assert [(f.severity, f.key_path[-1]) for f in direct] == [("warning", "folder")]
    assert "Azure delivers the path as uri_folder" in direct[0].message
    top = "inputs:\n  data: {type: uri_folder, path: azureml:prepared:1}\n"
    bound = _step(tmp_path, "      table: ${{parent.inputs.data}}\n", top)
    assert [(f.severity, f.key_path[-1]) for f in bound] == [("warning", "table")]


def test_a_model_where_data_is_declared_stays_an_error(tmp_path: Path) -> None:
    found = _step(tmp_path, "      folder: {type: mlflow_model, path: azureml:model:1}\n")
    assert [f.severity for f in found] == ["error"] and "expected type uri_folder, got mlflow_model" in found[0].message
