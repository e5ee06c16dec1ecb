"""Mutation suite: for each spec kind, broken variants of the committed render are each rejected with one line
that names the offending key path. Runs all four layers in-process (azure-ai-ml imported once), and the CLI once
over every mutant."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.validate.cli import validate_specs
from tools.validate.document import parse_spec
from tools.validate.findings import ERROR

Mutation = tuple[str, Callable[[Any], Any] | str, str]  # label, dict mutation or text transform "old=>new", expected


def put(*path_and_value: Any) -> Callable[[dict], dict]:
    *path, value = path_and_value

    def apply(data: dict) -> dict:
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        return data

    return apply


def drop(*path: str) -> Callable[[dict], dict]:
    def apply(data: dict) -> dict:
        node = data
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
        return data

    return apply


STEP = ("jobs", "finetune")
MUTATIONS: dict[str, list[Mutation]] = {
    "jobs/finetune.yml": [
        ("unknown top-level key", put("experiment_nmae", "x"), "experiment_nmae"),
        ("unknown key in settings", put("settings", "force_rerunn", True), "settings.force_rerunn"),
        ("unknown key on a step node", put(*STEP, "compte", "gpu"), "jobs.finetune.compte"),
        ("wrong type", put("settings", "force_rerun", [1]), "settings.force_rerun"),
        ("bad enum", put(*STEP, "inputs", "lr_scheduler_type", "cosin"), "jobs.finetune.inputs.lr_scheduler_type"),
        ("YAML boolean for a string enum", put(*STEP, "inputs", "apply_lora", True), "jobs.finetune.inputs.apply_lora"),
        ("integer for a string enum", put(*STEP, "inputs", "precision", 16), "jobs.finetune.inputs.precision"),
        (
            "unknown component input",
            put(*STEP, "inputs", "learning_rate_min", 5e-7),
            "jobs.finetune.inputs.learning_rate_min",
        ),
        (
            "string where a number is expected",
            put(*STEP, "inputs", "learning_rate", "1e-5"),
            "jobs.finetune.inputs.learning_rate",
        ),
        (
            "dangling output binding",
            put(*STEP, "outputs", "mlflow_model_folder", "${{parent.outputs.trained_modle}}"),
            "jobs.finetune.outputs.mlflow_model_folder",
        ),
        (
            "dangling input binding",
            put(*STEP, "inputs", "train_file_path", "${{parent.inputs.train}}"),
            "jobs.finetune.inputs.train_file_path",
        ),
        (
            "malformed registry URI",
            put(*STEP, "component", "azureml://registries/azureml/chat_completion_pipeline/0.0.82"),
            "jobs.finetune.component",
        ),
        ("out-of-range number", put(*STEP, "inputs", "num_train_epochs", 0), "jobs.finetune.inputs.num_train_epochs"),
        (
            "GPU count does not match the SKU",
            put(*STEP, "inputs", "number_of_gpu_to_use_finetuning", 4),
            "jobs.finetune.inputs.number_of_gpu_to_use_finetuning",
        ),
        (
            "wrong input type behind a binding",
            put("inputs", "base_model", "type", "uri_file"),
            "jobs.finetune.inputs.mlflow_model_path",
        ),
        ("missing required step field", drop(*STEP, "component"), "jobs.finetune"),
        (
            "duplicate key",
            "experiment_name: chat-completion-ultrachat=>experiment_name: a\nexperiment_name: b",
            "experiment_name",
        ),
        ("wrong $schema", "pipelineJob.schema.json=>model.schema.json", "$schema"),
    ],
    "compute/gpu-cluster.yml": [
        ("unknown top-level key", put("sizee", "Standard_NC6s_v3"), "sizee"),
        ("unknown nested key", put("network_settings", {"vnett_name": "x"}), "network_settings"),
        ("wrong type", put("max_instances", "two"), "max_instances"),
        ("bad enum", put("tier", "premium"), "tier"),
        ("bad type value", put("type", "amlcompte"), "type"),
        ("missing required", drop("name"), "name"),
        ("bad name", put("name", "1-bad_name!"), "name"),
        ("min greater than max", put("min_instances", 3), "min_instances"),
        ("out-of-range max", put("max_instances", 0), "max_instances"),
        ("duplicate key", "tier: dedicated=>tier: dedicated\ntier: low_priority", "tier"),
        ("wrong $schema", "amlCompute.schema.json=>data.schema.json", "$schema"),
    ],
    "data/train-sft.yml": [
        ("unknown top-level key", put("pth", "x.jsonl"), "pth"),
        ("unknown nested key", put("datastore", {"nmae": "x"}), "datastore"),
        ("wrong type", put("version", [1]), "version"),
        ("bad enum", put("type", "uri_fil"), "type"),
        ("missing required", drop("path"), "path"),
        ("bad name", put("name", "bad name!"), "name"),
        ("malformed URI", put("path", "azureml://datastore/workspaceblobstore/x.jsonl"), "path"),
        ("missing local file", put("path", "nope/train.jsonl"), "path"),
        ("wrong type description", put("description", ["a"]), "description"),
        ("duplicate key", "type: uri_file=>type: uri_file\ntype: uri_folder", "type"),
        ("wrong $schema", "data.schema.json=>model.schema.json", "$schema"),
    ],
    "models/finetuned-model.yml": [
        ("unknown top-level key", put("descripton", "x"), "descripton"),
        ("unknown nested key", put("stage", {"x": 1}), "stage"),
        ("bad enum", put("type", "mlflow_modle"), "type"),
        ("missing required", drop("path"), "path"),
        ("bad name", put("name", "-bad"), "name"),
        ("malformed job URI", put("path", "azureml://jobs//outputs/trained_model"), "path"),
        ("malformed registry URI", put("path", "azureml://registries/azureml/models/x"), "path"),
        ("wrong type", put("version", {"v": 1}), "version"),
        ("wrong type description", put("description", ["x"]), "description"),
        ("duplicate key", "type: mlflow_model=>type: mlflow_model\ntype: custom_model", "type"),
        ("wrong $schema", "model.schema.json=>environment.schema.json", "$schema"),
    ],
    "endpoints/endpoint.yml": [
        ("unknown top-level key", put("auth_mod", "key"), "auth_mod"),
        ("bad enum", put("auth_mode", "keys"), "auth_mode"),
        ("name too long", put("name", "ultrachat-phi3-dev-endpoint-0123456789"), "name"),
        ("name starts with a digit", put("name", "1ultrachat"), "name"),
        ("unknown nested key", put("identity", "typ", "user_assigned"), "identity.typ"),
        (
            "unknown key in identity list item",
            lambda d: d["identity"]["user_assigned_identities"][0].update(resource_idd="x") or d,
            "identity.user_assigned_identities[0].resource_idd",
        ),
        ("bad identity type", put("identity", "type", "user"), "identity.type"),
        ("wrong type", put("tags", ["a"]), "tags"),
        ("missing required", drop("identity", "user_assigned_identities"), "identity.user_assigned_identities"),
        ("duplicate key", "auth_mode: key=>auth_mode: key\nauth_mode: aml_token", "auth_mode"),
        ("wrong $schema", "managedOnlineEndpoint.schema.json=>managedOnlineDeployment.schema.json", "$schema"),
    ],
    "endpoints/deployment.yml": [
        ("unknown top-level key", put("instance_cnt", 1), "instance_cnt"),
        ("unknown nested key", put("request_settings", "request_timeout", 5), "request_settings.request_timeout"),
        ("wrong type", put("instance_count", "two"), "instance_count"),
        ("zero instances", put("instance_count", 0), "instance_count"),
        ("fractional instances", put("instance_count", 1.5), "instance_count"),
        (
            "timeout above the maximum",
            put("request_settings", "request_timeout_ms", 200000),
            "request_settings.request_timeout_ms",
        ),
        ("negative probe value", put("liveness_probe", "period", -1), "liveness_probe.period"),
        ("bad name", put("name", "Blue_1"), "name"),
        ("missing required", put("liveness_probe", {"perod": 10}), "liveness_probe"),
        ("SKU off the inference allow-list", put("instance_type", "Standard_NC4as_T4_v3"), "instance_type"),
        ("malformed model reference", put("model", "azureml:phi3::1"), "model"),
        ("duplicate key", "instance_count: 1=>instance_count: 1\ninstance_count: 2", "instance_count"),
        ("wrong $schema", "managedOnlineDeployment.schema.json=>managedOnlineEndpoint.schema.json", "$schema"),
    ],
    "components/finetune-sft/spec.yml": [
        ("unknown top-level key", put("enviroment", "x"), "enviroment"),
        ("unknown key in an input", put("inputs", "epochs", "defualt", 2.0), "inputs.epochs.defualt"),
        ("bad input type", put("inputs", "epochs", "type", "float"), "inputs.epochs.type"),
        ("bad enum", put("type", "commnd"), "type"),
        ("missing required", drop("command"), "command"),
        ("bad name", put("name", "finetune sft!"), "name"),
        ("missing code folder", put("code", "nosrc"), "code"),
        ("malformed environment reference", put("environment", "azureml:finetune-sft::1"), "environment"),
        ("malformed registry URI", put("environment", "azureml://registries/azureml/environments/acft"), "environment"),
        ("wrong type", put("version", [1]), "version"),
        ("duplicate key", "type: command=>type: command\ntype: command", "type"),
        ("wrong $schema", "commandComponent.schema.json=>data.schema.json", "$schema"),
    ],
    "environments/finetune-sft.yml": [
        ("unknown top-level key", put("imagee", "x"), "imagee"),
        ("unknown nested key", put("build", {"contxt": "."}), "build"),
        ("missing conda file", put("conda_file", "finetune-sft/nope.yaml"), "conda_file"),
        ("wrong type", put("conda_file", ["x"]), "conda_file"),
        ("bad enum", put("os_type", "windws"), "os_type"),
        ("bad name", put("name", "bad name"), "name"),
        ("missing required", drop("name"), "name"),
        ("wrong version type", put("version", {"v": 1}), "version"),
        ("wrong description type", put("description", ["x"]), "description"),
        ("duplicate key", "conda_file: finetune-sft/conda.yaml=>conda_file: a.yaml\nconda_file: b.yaml", "conda_file"),
        ("wrong $schema", "environment.schema.json=>model.schema.json", "$schema"),
    ],
    "jobs/finetune-sft.yml": [
        (
            "unknown component input",
            lambda d: d["jobs"]["sft"]["inputs"].update(lora_rr=8) or d,
            "jobs.sft.inputs.lora_rr",
        ),
        ("YAML boolean for a string enum", put("jobs", "sft", "inputs", "packing", True), "jobs.sft.inputs.packing"),
        ("bad enum", put("jobs", "sft", "inputs", "lr_scheduler", "cosin"), "jobs.sft.inputs.lr_scheduler"),
        ("bad distribution type", put("jobs", "sft", "distribution", "type", "torch"), "jobs.sft.distribution.type"),
        (
            "zero processes",
            put("jobs", "sft", "distribution", "process_count_per_instance", 0),
            "jobs.sft.distribution.process_count_per_instance",
        ),
        ("wrong type", put("jobs", "sft", "resources", "instance_count", "two"), "jobs.sft.resources.instance_count"),
        (
            "out-of-range instances",
            put("jobs", "sft", "resources", "instance_count", 0),
            "jobs.sft.resources.instance_count",
        ),
        (
            "dangling binding",
            put("jobs", "sft", "inputs", "train_file", "${{parent.inputs.train}}"),
            "jobs.sft.inputs.train_file",
        ),
        ("unknown key on a step node", put("jobs", "sft", "distributon", {"type": "pytorch"}), "jobs.sft.distributon"),
        (
            "missing local component",
            put("jobs", "sft", "component", "../components/nope/spec.yml"),
            "jobs.sft.component",
        ),
        ("duplicate key", "force_rerun: true=>force_rerun: true\n  force_rerun: false", "settings.force_rerun"),
        ("wrong $schema", "pipelineJob.schema.json=>commandComponent.schema.json", "$schema"),
    ],
}


def mutate(text: str, mutation: Callable[[Any], Any] | str) -> str:
    if isinstance(mutation, str):
        old, new = mutation.split("=>")
        assert old in text, old
        return text.replace(old, new, 1)
    data = mutation(copy.deepcopy(yaml.safe_load(text)))
    return yaml.safe_dump(data, sort_keys=False)


CASES = [(spec, *m) for spec, mutations in MUTATIONS.items() for m in mutations]


def test_every_kind_has_at_least_ten_mutations() -> None:
    for spec, mutations in MUTATIONS.items():
        assert len(mutations) >= 10, spec


@pytest.mark.parametrize("spec_path", sorted(MUTATIONS))
def test_unmutated_spec_has_no_errors(repo_root: Path, spec_path: str) -> None:
    spec = parse_spec(repo_root / spec_path, spec_path)
    report = validate_specs([spec])
    assert [f.text() for f in report.findings if f.severity == ERROR] == []


@pytest.mark.parametrize(("spec_path", "label", "mutation", "expected"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_mutation_is_rejected_with_its_key_path(
    repo_root: Path, spec_path: str, label: str, mutation: Any, expected: str
) -> None:
    original = repo_root / spec_path
    text = mutate(original.read_text(), mutation)
    spec = parse_spec(original, f"broken/{spec_path}", text)  # resolves relative paths as the original would
    siblings = [parse_spec(repo_root / other, other) for other in MUTATIONS if other != spec_path]
    report = validate_specs([spec, *siblings])  # the workspace's other specs give cross-file facts (cluster SKU)
    errors = [f for f in report.findings if f.severity == ERROR and f.path == spec.display]
    assert errors, f"{label}: no error"
    assert any(expected in f.text() for f in errors), [f.text() for f in errors]
    assert all("\n" not in f.text() for f in errors)


def test_cli_rejects_each_mutant_file_with_one_line_per_finding(repo_root: Path, tmp_path: Path) -> None:
    paths: dict[str, str] = {}
    # Mutants sit at their originals' depth in a scratch tree whose referenced files link back to the repo, so
    # relative references (code:, conda_file:, component:, data paths) resolve as they do in the checkout.
    for linked in (
        "components/finetune-sft/src",
        "components/finetune-sft/spec.yml",
        "environments/finetune-sft",
        "data/sample",
    ):
        (tmp_path / linked).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / linked).symlink_to(repo_root / linked)
    for index, (spec_path, _label, mutation, expected) in enumerate(CASES):
        target = tmp_path / Path(spec_path).parent / f"broken-{index:03d}-{Path(spec_path).name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(mutate((repo_root / spec_path).read_text(), mutation))
        paths[str(target)] = expected
    result = subprocess.run(
        [sys.executable, "-m", "tools", "validate", *paths], cwd=repo_root, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for path, expected in paths.items():
        mine = [line for line in lines if line.startswith(path + ":")]
        assert any(expected in line and " warning: " not in line for line in mine), (path, expected, mine)
