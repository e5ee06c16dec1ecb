"""Layers B (azure-ai-ml loaders) and C (exported JSON schemas): the export does not drift from the pinned SDK,
valid specs pass both layers, and broken variants are reported at the right key path with a short message."""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.core.repo import active
from tools.schemas import export as schemas
from tools.validate import schema as schema_check
from tools.validate import sdk as sdk_check
from tools.validate.problem import Problem

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "valid"

VALID = {
    "jobs/finetune.yml": "pipelineJob",
    "jobs/sft_pipeline.yml": "pipelineJob",
    "jobs/sft_command.yml": "commandJob",
    "components/finetune-sft/component.yml": "commandComponent",
    "compute/gpu-cluster.yml": "amlCompute",
    "environments/sft-env.yml": "environment",
    "data/train.yml": "data",
    "models/model.yml": "model",
    "endpoints/endpoint.yml": "managedOnlineEndpoint",
    "endpoints/deployment.yml": "managedOnlineDeployment",
}


@pytest.fixture(scope="session")
def sdk() -> Any:
    """azure.ai.ml, imported once per test session (about 2 s)."""
    return sdk_check.import_sdk()


def load(rel: str) -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / rel).read_text(encoding="utf-8"))


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


# ------------------------------------------------------------------------------------------------ export
def test_export_is_byte_identical_to_committed_files(sdk: Any) -> None:
    assert schemas.check() == []


def test_export_check_cli_reports_drift(sdk: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    schemas.add_arguments(parser)
    args = parser.parse_args(["export", "--check"])
    assert args.check and schemas.run(args) == 0
    for name in schemas.export_all():
        (tmp_path / name).write_text((active().json_schema_dir / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "data.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "model.schema.json").unlink()
    problems = schemas.check(output_dir=tmp_path)
    assert len(problems) == 2
    assert any("data.schema.json" in p and "differs" in p for p in problems)
    assert any("model.schema.json" in p and "missing" in p for p in problems)


def test_every_kind_names_a_real_loader(sdk: Any) -> None:
    from azure.ai.ml.entities import _load_functions

    for kind, facts in schemas.load_kinds()["kinds"].items():
        assert callable(getattr(_load_functions, facts["loader"], None)), kind
        assert sdk_check.loader_name(kind) == facts["loader"]


def _roots(schema: dict) -> list[dict]:
    refs = [schema["$ref"]] if "$ref" in schema else [branch["$ref"] for branch in schema["anyOf"]]
    return [schema["definitions"][ref.rsplit("/", 1)[-1]] for ref in refs]


@pytest.mark.parametrize("kind", sorted(schema_check.kinds()))
def test_exported_schema_shape(kind: str) -> None:
    schema = json.loads(schema_check.schema_path(kind).read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"] == schema_check.kinds()[kind]["url"]
    for root in _roots(schema):
        assert root["properties"]["$schema"]["type"] == "string"
    assert schema_check.kind_from_schema_url(schema["$id"]) == kind


# ------------------------------------------------------------------------------------------------ valid specs
@pytest.mark.parametrize("rel", sorted(VALID))
def test_valid_specs_pass_layer_c(rel: str) -> None:
    data = load(rel)
    assert schema_check.kind_from_schema_url(data["$schema"]) == VALID[rel]
    before = copy.deepcopy(data)
    assert schema_check.validate_against_schema(VALID[rel], data) == []
    assert data == before  # no defaults filled in


@pytest.mark.parametrize("rel", sorted(VALID))
def test_valid_specs_pass_layer_b(sdk: Any, rel: str) -> None:
    path = FIXTURES / rel
    assert sdk_check.check_with_sdk(VALID[rel], path.read_text(encoding="utf-8"), path) == []


def test_layer_b_resolves_paths_from_origin(sdk: Any, tmp_path: Path) -> None:
    text = (FIXTURES / "environments/sft-env.yml").read_text(encoding="utf-8")
    issues = sdk_check.check_with_sdk("environment", text, tmp_path / "environments" / "sft-env.yml")
    assert [i.key_path for i in issues] == [("conda_file",)]
    assert "No such file or directory" in issues[0].message and "\n" not in issues[0].message


# ------------------------------------------------------------------------------------------------ broken specs
def setter(*path: str | int, value: Any) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def dropper(*path: str | int) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


SKIP = None  # the SDK lets this through silently (see toolchain-notes.md): layer B is not asserted

# (fixture, mutation, expected key path, text in layer C's message, text in layer B's message or SKIP)
BROKEN: dict[str, tuple[str, Callable[[dict], None], tuple, str, str | None]] = {
    "pipeline-top-unknown": ("jobs/finetune.yml", setter("experiment_nme", value="x"), ("experiment_nme",),
                             "unknown key 'experiment_nme'", "unknown key"),
    "pipeline-step-unknown": ("jobs/finetune.yml", setter("jobs", "finetune", "learnig_rate", value=1),
                              ("jobs", "finetune", "learnig_rate"), "unknown key 'learnig_rate'", "unknown key"),
    "pipeline-settings-unknown": ("jobs/finetune.yml", setter("settings", "foo", value=True), ("settings", "foo"),
                                  "unknown key 'foo'", SKIP),
    "pipeline-input-bad-type": ("jobs/finetune.yml", setter("inputs", "train_file_path", "type", value="uri_fil"),
                                ("inputs", "train_file_path", "type"), "got 'uri_fil'", "got 'uri_fil'"),
    "pipeline-step-wrong-type": ("jobs/sft_pipeline.yml",
                                 setter("jobs", "sft", "resources", "instance_count", value="abc"),
                                 ("jobs", "sft", "resources", "instance_count"),
                                 "expected integer, got string 'abc'", "expected integer"),
    "pipeline-step-bad-type": ("jobs/sft_pipeline.yml", setter("jobs", "sft", "type", value="comand"),
                               ("jobs", "sft", "type"), "got 'comand'", "got 'comand'"),
    "pipeline-bad-type": ("jobs/sft_pipeline.yml", setter("type", value="pipelin"), ("type",),
                          "expected one of [pipeline], got 'pipelin'", "pipelin"),
    "command-wrong-type": ("jobs/sft_command.yml", setter("resources", "instance_count", value="abc"),
                           ("resources", "instance_count"), "expected integer, got string 'abc'", "expected integer"),
    "command-bad-enum": ("jobs/sft_command.yml", setter("distribution", "type", value="torch"),
                         ("distribution", "type"), "got 'torch'", "got 'torch'"),
    "command-missing-required": ("jobs/sft_command.yml", dropper("command"), ("command",),
                                 "missing required key 'command'", "missing required key"),
    "command-nested-unknown": ("jobs/sft_command.yml", setter("resources", "instance_cnt", value=2),
                               ("resources", "instance_cnt"), "unknown key 'instance_cnt'", "unknown key"),
    "command-bad-environment": ("jobs/sft_command.yml", setter("environment", value="sft-env:1"), ("environment",),
                                "matches none of", "azureml:"),
    "component-nested-unknown": ("components/finetune-sft/component.yml",
                                 setter("inputs", "lr_scheduler", "typ", value="x"),
                                 ("inputs", "lr_scheduler", "typ"), "unknown key 'typ'", "unknown key"),
    "component-top-unknown": ("components/finetune-sft/component.yml", setter("learnig_rate", value=1),
                              ("learnig_rate",), "unknown key 'learnig_rate'", SKIP),
    "component-input-bad-type": ("components/finetune-sft/component.yml",
                                 setter("inputs", "num_train_epochs", "type", value="int"),
                                 ("inputs", "num_train_epochs", "type"), "got 'int'", "got 'int'"),
    "compute-wrong-type": ("compute/gpu-cluster.yml", setter("max_instances", value="abc"), ("max_instances",),
                           "expected integer, got string 'abc'", "expected integer"),
    "compute-bad-enum": ("compute/gpu-cluster.yml", setter("tier", value="premium"), ("tier",),
                         "expected one of [low_priority, dedicated], got 'premium'", "premium"),
    "compute-missing-required": ("compute/gpu-cluster.yml", dropper("name"), ("name",),
                                 "missing required key 'name'", "missing required key"),
    "compute-bad-type": ("compute/gpu-cluster.yml", setter("type", value="amlcomp"), ("type",),
                         "got 'amlcomp'", "amlcomp"),
    "environment-unknown": ("environments/sft-env.yml", setter("imag", value="x"), ("imag",),
                            "unknown key 'imag'", "unknown key"),
    "environment-wrong-type": ("environments/sft-env.yml", setter("version", value=[1]), ("version",),
                               "expected string or integer, got array", SKIP),
    "data-bad-type": ("data/train.yml", setter("type", value="uri"), ("type",), "got 'uri'", "uri_file"),
    "data-missing-required": ("data/train.yml", dropper("path"), ("path",), "missing required key 'path'",
                              "missing required key"),
    "model-bad-type": ("models/model.yml", setter("type", value="mlflow"), ("type",), "got 'mlflow'",
                       "got 'mlflow'"),
    "model-unknown": ("models/model.yml", setter("flavor", value="x"), ("flavor",), "unknown key 'flavor'",
                      "unknown key"),
    "endpoint-bad-enum": ("endpoints/endpoint.yml", setter("auth_mode", value="keys"), ("auth_mode",),
                          "expected one of [aml_token, key, aad_token], got 'keys'", "got 'keys'"),
    "endpoint-nested-bad-enum": ("endpoints/endpoint.yml", setter("identity", "type", value="user"),
                                 ("identity", "type"), "got 'user'", "got 'user'"),
    "endpoint-nested-unknown": ("endpoints/endpoint.yml", setter("identity", "principal", value="x"),
                                ("identity", "principal"), "unknown key 'principal'", "unknown key"),
    "deployment-nested-unknown": ("endpoints/deployment.yml", setter("liveness_probe", "initial_dely", value=3),
                                  ("liveness_probe", "initial_dely"), "unknown key 'initial_dely'", "unknown key"),
    "deployment-wrong-type": ("endpoints/deployment.yml", setter("instance_count", value="abc"), ("instance_count",),
                              "expected integer, got string 'abc'", "expected integer"),
    "deployment-missing-required": ("endpoints/deployment.yml", dropper("endpoint_name"), ("endpoint_name",),
                                    "missing required key 'endpoint_name'", "missing required key"),
    "deployment-bad-model-ref": ("endpoints/deployment.yml", setter("model", value="phi3:1"), ("model",),
                                 "matches none of", "azureml:"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_spec_layer_c(case: str) -> None:
    rel, mutate, key_path, c_text, _ = BROKEN[case]
    data = load(rel)
    mutate(data)
    issues = schema_check.validate_against_schema(VALID[rel], data)
    assert [i.key_path for i in issues] == [key_path], issues
    assert c_text in issues[0].message
    assert "\n" not in issues[0].message and len(issues[0].message) < 300


@pytest.mark.parametrize("case", sorted(k for k, v in BROKEN.items() if v[4] is not SKIP))
def test_broken_spec_layer_b(sdk: Any, case: str) -> None:
    rel, mutate, key_path, _, b_text = BROKEN[case]
    data = load(rel)
    mutate(data)
    issues = sdk_check.check_with_sdk(VALID[rel], dump(data), FIXTURES / rel)
    assert [i.key_path for i in issues] == [key_path], issues
    assert b_text in issues[0].message, issues
    assert "\n" not in issues[0].message and "Traceback" not in issues[0].message
    assert "https://" not in issues[0].message  # SDK links and boilerplate stripped


def test_layer_c_reports_every_problem_sorted() -> None:
    data = load("jobs/sft_command.yml")
    data["resources"]["instance_count"] = "two"
    data["foo"] = 1
    data.pop("command")
    issues = schema_check.validate_against_schema("commandJob", data)
    assert [i.key_path for i in issues] == [("command",), ("foo",), ("resources", "instance_count")]


def test_layer_c_rejects_non_mapping_and_strict_scalars() -> None:
    assert schema_check.validate_against_schema("data", ["not", "a", "mapping"]) == [
        Problem((), "expected object, got array")
    ]
    data = load("endpoints/deployment.yml")
    data["instance_count"] = 1.5  # the SDK truncates this to 1; the schema does not
    assert schema_check.validate_against_schema("managedOnlineDeployment", data) == [
        Problem(("instance_count",), "expected integer, got number 1.5")
    ]


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown spec kind"):
        schema_check.validate_against_schema("nosuchKind", {})
    with pytest.raises(ValueError, match="unknown spec kind"):
        sdk_check.check_with_sdk("nosuchKind", "", Path("x.yml"))


def test_layer_b_yaml_syntax_error_is_one_line(sdk: Any) -> None:
    issues = sdk_check.check_with_sdk("data", "name: [unclosed\n", FIXTURES / "data" / "x.yml")
    assert len(issues) == 1 and "\n" not in issues[0].message


def test_endpoint_name_problem(sdk: Any) -> None:
    assert sdk_check.endpoint_name_problem("phi3-ultrachat-dev") is None
    assert "32" in (sdk_check.endpoint_name_problem("x" * 33) or "")
    assert sdk_check.endpoint_name_problem("1-starts-with-digit") is not None


def test_issue_key_formatting() -> None:
    assert Problem(("jobs", "x", "inputs", 0, "y"), "m").key == "jobs.x.inputs[0].y"
    assert str(Problem((), "whole document")) == "whole document"
    assert str(Problem(("a",), "bad")) == "a: bad"


def test_layer_c_knows_the_sdk_binding_pattern(sdk: Any) -> None:
    """schema.BINDING_PATTERN (layer C tells a step's `${{...}}` alternative by it, without importing the SDK) is
    the pattern azure-ai-ml's DataBindingStr exports."""
    from azure.ai.ml._schema.core.fields import DataBindingStr

    from tools.validate.schema import BINDING_PATTERN

    assert DataBindingStr()._jsonschema_type_mapping()["pattern"] == BINDING_PATTERN


def test_reused_validation_schemas_give_the_sdks_own_verdicts(sdk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """sdk._reuse_validation_schemas (one marshmallow schema per entity class and context) finds what the SDK's
    own property (a new schema on every use) finds, on every broken pipeline and component of BROKEN and the
    valid specs, each checked twice so that the second check runs on reused schemas."""
    from azure.ai.ml.entities._validation.schema import SchemaValidatableMixin

    cases = [(rel, mutate) for rel, mutate, *_ in BROKEN.values() if rel.startswith(("jobs/", "components/"))]
    cases += [(rel, lambda data: None) for rel in VALID if rel.startswith(("jobs/", "components/"))]

    def verdicts() -> list[list[Any]]:
        out = []
        for rel, mutate in cases:
            data = load(rel)
            mutate(data)
            for _ in range(2):
                out.append(sdk_check.check_with_sdk(VALID[rel], dump(data), FIXTURES / rel))
        return out

    reused = verdicts()
    monkeypatch.setattr(SchemaValidatableMixin, "_schema_for_validation", sdk_check._sdk_schema_for_validation)
    assert verdicts() == reused
    assert any(reused) and not all(reused)


def test_sdk_key_paths_name_what_is_in_the_file(sdk: Any, tmp_path: Path) -> None:
    """marshmallow's Dict field wraps its entries' errors in `value`: the key path drops it where the spec has no
    such key (and keeps a real `value` key, such as auto_delete_setting.value)."""
    text = ("$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json\ntype: pipeline\n"
            "name: p\ninputs: {n: {type: integer}}\njobs:\n  a:\n    type: command\n    component:\n"
            "      command: echo hi\n      environment: azureml:env:1\n"
            "    resources: {instance_coutn: '${{parent.inputs.n}}'}\n")  # fmt: skip
    issues = sdk_check.check_with_sdk("pipelineComponent", text, tmp_path / "p.yml")
    assert [i.key_path for i in issues] == [("jobs", "a", "resources", "instance_coutn")], issues
    assert sdk_check._through_data(("settings", "value"), {"settings": {"value": 1}}) == ("settings", "value")
