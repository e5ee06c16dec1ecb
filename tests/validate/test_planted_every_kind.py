"""Planted mistakes in a spec of every kind are errors naming the key (issue 10, acceptance): one small valid spec of
our own per kind family; it is valid as written, and each planting (an unknown key at depth, a wrong type, a bad
name, an out-of-range value, a dangling binding where bindings exist) gives an error at that key path.

All specs and mutants go through all four layers in one in-process call (azure-ai-ml imported once)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.validate.document import parse_spec
from tools.validate.findings import ERROR
from tools.validate.layers import validate_specs

BASE = "https://azuremlschemas.azureedge.net/latest/"
ENV = "azureml:my-env:1"
MODEL = "azureml:my-model:1"
ARM = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers"

# kind -> (spec text, {mutation: (key path, planted value)}); the key path's last part is the key planted or changed.
SPECS: dict[str, tuple[str, dict[str, tuple[tuple, Any]]]] = {
    "commandJob": (f"""\
$schema: {BASE}commandJob.schema.json
type: command
experiment_name: demo
command: python train.py --epochs ${{{{inputs.epochs}}}}
code: ./src
environment: {ENV}
compute: azureml:cpu-cluster
inputs: {{epochs: 1}}
resources: {{instance_count: 1}}
""", {"unknown-key": (("resources", "instance_cuont"), 1), "wrong-type": (("resources", "instance_count"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("resources", "instance_count"), 0),
      "dangling-binding": (("command",), "python train.py --epochs ${{inputs.epoch}}")}),
    "pipelineJob": (f"""\
$schema: {BASE}pipelineJob.schema.json
type: pipeline
experiment_name: demo
settings: {{default_compute: azureml:cpu-cluster}}
inputs: {{epochs: 1}}
jobs:
  train:
    type: command
    command: python train.py --epochs ${{{{inputs.epochs}}}}
    code: ./src
    environment: {ENV}
    inputs: {{epochs: "${{{{parent.inputs.epochs}}}}"}}
    resources: {{instance_count: 1}}
""", {"unknown-key": (("jobs", "train", "resources", "instance_cuont"), 1),
      "wrong-type": (("jobs", "train", "resources", "instance_count"), "abc"),
      "bad-name": (("name",), "bad name!"),
      "out-of-range": (("jobs", "train", "resources", "instance_count"), -1),
      "dangling-binding": (("jobs", "train", "inputs", "epochs"), "${{parent.inputs.epoch}}")}),
    "sweepJob": (f"""\
$schema: {BASE}sweepJob.schema.json
type: sweep
experiment_name: demo
compute: azureml:cpu-cluster
sampling_algorithm: random
search_space:
  lr: {{type: uniform, min_value: 0.001, max_value: 0.1}}
objective: {{goal: maximize, primary_metric: accuracy}}
limits: {{max_total_trials: 4, max_concurrent_trials: 2}}
trial:
  command: python train.py --lr ${{{{search_space.lr}}}}
  code: ./src
  environment: {ENV}
""", {"unknown-key": (("limits", "max_total_trals"), 4), "wrong-type": (("limits", "max_total_trials"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("limits", "max_total_trials"), 0),
      "dangling-binding": (("trial", "command"), "python train.py --lr ${{search_space.learning_rate}}")}),
    "sparkJob": (f"""\
$schema: {BASE}sparkJob.schema.json
type: spark
experiment_name: demo
code: ./src
entry: {{file: main.py}}
args: --data ${{{{inputs.data}}}}
inputs:
  data: {{type: uri_file, path: azureml://datastores/workspaceblobstore/paths/data.csv, mode: direct}}
conf:
  spark.driver.cores: 1
  spark.driver.memory: 2g
  spark.executor.cores: 2
  spark.executor.memory: 2g
  spark.executor.instances: 2
resources: {{instance_type: standard_e4s_v3, runtime_version: "3.4"}}
""", {"unknown-key": (("resources", "instance_typ"), "standard_e4s_v3"),
      "wrong-type": (("entry", "file"), ["main.py"]), "bad-name": (("name",), "bad name!"),
      "out-of-range": (("conf", "spark.executor.instances"), -2),
      "dangling-binding": (("args",), "--data ${{inputs.dataset}}")}),
    "autoMLJob": (f"""\
$schema: {BASE}autoMLJob.schema.json
type: automl
task: classification
experiment_name: demo
compute: azureml:cpu-cluster
target_column_name: label
primary_metric: accuracy
training_data: {{type: mltable, path: azureml:train-data:1}}
limits: {{max_trials: 4, timeout_minutes: 60}}
""", {"unknown-key": (("limits", "max_trails"), 4), "wrong-type": (("limits", "max_trials"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("limits", "max_trials"), 0)}),
    "finetuningJob": ("""\
type: finetuning
experiment_name: demo
task: chat_completion
model_provider: custom
model: {type: mlflow_model, path: azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/14}
training_data: {type: uri_file, path: azureml://datastores/workspaceblobstore/paths/train.jsonl}
resources: {instance_types: [Standard_NC24ads_A100_v4]}
""", {"unknown-key": (("model", "pth"), "x"), "wrong-type": (("training_data", "path"), ["a"]),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("task",), "chat_completions")}),
    "commandComponent": (f"""\
$schema: {BASE}commandComponent.schema.json
name: train
version: "1"
type: command
command: python train.py --epochs ${{{{inputs.epochs}}}}
code: ./src
environment: {ENV}
inputs:
  epochs: {{type: integer, default: 1, min: 1, max: 10}}
""", {"unknown-key": (("inputs", "epochs", "defualt"), 1), "wrong-type": (("inputs", "epochs", "min"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("inputs", "epochs", "default"), 11),
      "dangling-binding": (("command",), "python train.py --epochs ${{inputs.epoch}}")}),
    "pipelineComponent": (f"""\
$schema: {BASE}pipelineComponent.schema.json
name: train_pipeline
version: "1"
type: pipeline
inputs:
  epochs: {{type: integer, default: 1}}
jobs:
  train:
    type: command
    command: python train.py --epochs ${{{{inputs.epochs}}}}
    code: ./src
    environment: {ENV}
    inputs: {{epochs: "${{{{parent.inputs.epochs}}}}"}}
    resources: {{instance_count: 1}}
""", {"unknown-key": (("jobs", "train", "resources", "instance_cuont"), 1),
      "wrong-type": (("jobs", "train", "resources", "instance_count"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("jobs", "train", "resources", "instance_count"), 0),
      "dangling-binding": (("jobs", "train", "inputs", "epochs"), "${{parent.inputs.epoch}}")}),
    "sparkComponent": (f"""\
$schema: {BASE}sparkComponent.schema.json
name: prep
version: "1"
type: spark
code: ./src
entry: {{file: main.py}}
args: --data ${{{{inputs.data}}}}
inputs:
  data: {{type: uri_file, mode: direct}}
conf:
  spark.driver.cores: 1
  spark.driver.memory: 2g
  spark.executor.cores: 2
  spark.executor.memory: 2g
  spark.executor.instances: 2
""", {"unknown-key": (("entry", "fiel"), "main.py"), "wrong-type": (("entry", "file"), ["main.py"]),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("conf", "spark.executor.instances"), -2),
      "dangling-binding": (("args",), "--data ${{inputs.dataset}}")}),
    "parallelComponent": (f"""\
$schema: {BASE}parallelComponent.schema.json
name: score
version: "1"
type: parallel
inputs:
  data: {{type: uri_folder}}
outputs:
  scores: {{type: uri_folder}}
input_data: ${{{{inputs.data}}}}
mini_batch_size: "10"
resources: {{instance_count: 2}}
max_concurrency_per_instance: 1
retry_settings: {{max_retries: 2, timeout: 60}}
task:
  type: run_function
  code: ./src
  entry_script: score.py
  environment: {ENV}
  program_arguments: --out ${{{{outputs.scores}}}}
""", {"unknown-key": (("retry_settings", "max_retires"), 2), "wrong-type": (("retry_settings", "max_retries"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("max_concurrency_per_instance",), 0),
      "dangling-binding": (("input_data",), "${{inputs.dataset}}")}),
    "amlCompute": (f"""\
$schema: {BASE}amlCompute.schema.json
name: cpu-cluster
type: amlcompute
size: Standard_DS3_v2
min_instances: 0
max_instances: 2
idle_time_before_scale_down: 120
""", {"unknown-key": (("ssh_settings", "admin_usrname"), "me"), "wrong-type": (("max_instances",), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("idle_time_before_scale_down",), -3)}),
    "computeInstance": (f"""\
$schema: {BASE}computeInstance.schema.json
name: my-instance
type: computeinstance
size: Standard_DS3_v2
idle_time_before_shutdown_minutes: 60
""", {"unknown-key": (("schedules", "compute_star_stop"), []),
      "wrong-type": (("idle_time_before_shutdown_minutes",), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("idle_time_before_shutdown_minutes",), -5)}),
    "vmCompute": (f"""\
$schema: {BASE}vmCompute.schema.json
name: my-vm
type: virtualmachine
resource_id: {ARM}/Microsoft.Compute/virtualMachines/vm
ssh_settings: {{admin_username: azureuser, ssh_port: 22}}
""", {"unknown-key": (("ssh_settings", "admin_usrname"), "me"), "wrong-type": (("ssh_settings", "ssh_port"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("ssh_settings", "ssh_port"), 70000)}),
    "kubernetesCompute": (f"""\
$schema: {BASE}kubernetesCompute.schema.json
name: my-k8s
type: kubernetes
resource_id: {ARM}/Microsoft.ContainerService/managedClusters/aks
namespace: default
""", {"unknown-key": (("identity", "tpye"), "system_assigned"), "wrong-type": (("namespace",), ["default"]),
      "bad-name": (("name",), "bad name!")}),
    "environment": (f"""\
$schema: {BASE}environment.schema.json
name: my-env
version: "1"
image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
inference_config:
  liveness_route: {{path: /live, port: 5001}}
  readiness_route: {{path: /ready, port: 5001}}
  scoring_route: {{path: /score, port: 5001}}
""", {"unknown-key": (("inference_config", "liveness_route", "pth"), "/live"),
      "wrong-type": (("inference_config", "liveness_route", "port"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("inference_config", "liveness_route", "port"), 70000)}),
    "data": (f"""\
$schema: {BASE}data.schema.json
name: train-data
version: "1"
type: uri_file
path: azureml://datastores/workspaceblobstore/paths/train.jsonl
""", {"unknown-key": (("descriptoin",), "x"), "wrong-type": (("path",), ["a"]),
      "bad-name": (("name",), "bad name!")}),
    "dataImport": ("""\
name: imported
type: mltable
path: azureml://datastores/workspaceblobstore/paths/imported/
source:
  type: database
  connection: azureml:my-sql
  query: select * from t
""", {"unknown-key": (("source", "qurey"), "select 1"), "wrong-type": (("source", "query"), ["select 1"]),
      "bad-name": (("name",), "bad name!")}),
    "model": (f"""\
$schema: {BASE}model.schema.json
name: my-model
version: "1"
type: mlflow_model
path: azureml://datastores/workspaceblobstore/paths/model/
""", {"unknown-key": (("descriptoin",), "x"), "wrong-type": (("path",), ["a"]),
      "bad-name": (("name",), "bad name!")}),
    "azureBlob": (f"""\
$schema: {BASE}azureBlob.schema.json
name: my_blob
type: azure_blob
account_name: mystorage
container_name: data
credentials: {{account_key: "00000000"}}
""", {"unknown-key": (("credentials", "acount_key"), "0"), "wrong-type": (("container_name",), ["data"]),
      "bad-name": (("name",), "bad name!")}),
    "azureFile": (f"""\
$schema: {BASE}azureFile.schema.json
name: my_files
type: azure_file
account_name: mystorage
file_share_name: share
credentials: {{account_key: "00000000"}}
""", {"unknown-key": (("credentials", "acount_key"), "0"), "wrong-type": (("file_share_name",), ["share"]),
      "bad-name": (("name",), "bad name!")}),
    "azureDataLakeGen1": (f"""\
$schema: {BASE}azureDataLakeGen1.schema.json
name: my_adls1
type: azure_data_lake_gen1
store_name: mystore
credentials: {{tenant_id: 00000000-0000-0000-0000-000000000000, client_id: 00000000-0000-0000-0000-000000000000,
               client_secret: x}}
""", {"unknown-key": (("credentials", "client_secrt"), "x"), "wrong-type": (("store_name",), ["s"]),
      "bad-name": (("name",), "bad name!")}),
    "azureDataLakeGen2": (f"""\
$schema: {BASE}azureDataLakeGen2.schema.json
name: my_adls2
type: azure_data_lake_gen2
account_name: mystorage
filesystem: data
""", {"unknown-key": (("credentials", "client_secrt"), "x"), "wrong-type": (("filesystem",), ["d"]),
      "bad-name": (("name",), "bad name!")}),
    "managedOnlineEndpoint": (f"""\
$schema: {BASE}managedOnlineEndpoint.schema.json
name: my-endpoint
auth_mode: key
traffic: {{blue: 100}}
""", {"unknown-key": (("identity", "tpye"), "system_assigned"), "wrong-type": (("traffic", "blue"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("traffic", "blue"), 101)}),
    "kubernetesOnlineEndpoint": (f"""\
$schema: {BASE}kubernetesOnlineEndpoint.schema.json
name: my-k8s-endpoint
compute: azureml:my-k8s
auth_mode: key
""", {"unknown-key": (("identity", "tpye"), "system_assigned"), "wrong-type": (("compute",), ["a"]),
      "bad-name": (("name",), "bad name!")}),
    "managedOnlineDeployment": (f"""\
$schema: {BASE}managedOnlineDeployment.schema.json
name: blue
endpoint_name: my-endpoint
model: {MODEL}
instance_type: Standard_DS3_v2
instance_count: 1
request_settings: {{request_timeout_ms: 5000}}
""", {"unknown-key": (("request_settings", "request_timeout_mss"), 1),
      "wrong-type": (("instance_count",), "abc"), "bad-name": (("name",), "bad name!"),
      "out-of-range": (("request_settings", "request_timeout_ms"), 200000)}),
    "kubernetesOnlineDeployment": (f"""\
$schema: {BASE}kubernetesOnlineDeployment.schema.json
name: blue
type: kubernetes
endpoint_name: my-k8s-endpoint
model: {MODEL}
instance_type: defaultinstancetype
instance_count: 1
""", {"unknown-key": (("request_settings", "request_timeout_mss"), 1),
      "wrong-type": (("instance_count",), "abc"), "bad-name": (("name",), "bad name!"),
      "out-of-range": (("instance_count",), 0)}),
    "batchEndpoint": (f"""\
$schema: {BASE}batchEndpoint.schema.json
name: my-batch
auth_mode: aad_token
""", {"unknown-key": (("defaults", "deployment_nme"), "x"), "wrong-type": (("defaults", "deployment_name"), ["x"]),
      "bad-name": (("name",), "bad name!")}),
    "modelBatchDeployment": (f"""\
$schema: {BASE}modelBatchDeployment.schema.json
name: blue
endpoint_name: my-batch
type: model
model: {MODEL}
compute: azureml:cpu-cluster
resources: {{instance_count: 1}}
settings: {{max_concurrency_per_instance: 1, mini_batch_size: 10, output_action: append_row}}
""", {"unknown-key": (("settings", "mini_batch_sze"), 10), "wrong-type": (("settings", "mini_batch_size"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("resources", "instance_count"), 0)}),
    "pipelineComponentBatchDeployment": (f"""\
$schema: {BASE}pipelineComponentBatchDeployment.schema.json
name: blue
endpoint_name: my-batch
type: pipeline
component: azureml:train_pipeline:1
settings: {{default_compute: azureml:cpu-cluster}}
""", {"unknown-key": (("componnet",), "x"), "wrong-type": (("settings",), "abc"),
      "bad-name": (("name",), "bad name!")}),
    "batchDeployment": (f"""\
$schema: {BASE}batchDeployment.schema.json
name: blue
endpoint_name: my-batch
model: {MODEL}
compute: azureml:cpu-cluster
resources: {{instance_count: 1}}
mini_batch_size: 10
output_action: append_row
""", {"unknown-key": (("retry_settings", "max_retires"), 2), "wrong-type": (("mini_batch_size",), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("resources", "instance_count"), 0)}),
    "workspace": (f"""\
$schema: {BASE}workspace.schema.json
name: mlw-demo
location: eastus
managed_network: {{isolation_mode: allow_internet_outbound}}
""", {"unknown-key": (("managed_network", "isolation_mod"), "x"), "wrong-type": (("location",), ["eastus"]),
      "bad-name": (("name",), "bad name!")}),
    "registry": (f"""\
$schema: {BASE}registry.schema.json
name: my-registry
location: eastus
replication_locations:
  - location: eastus
""", {"unknown-key": (("replication_locations", 0, "locaton"), "x"),
      "wrong-type": (("replication_locations",), "eastus"), "bad-name": (("name",), "bad name!")}),
    "schedule": (f"""\
$schema: {BASE}schedule.schema.json
name: nightly
trigger:
  type: recurrence
  frequency: day
  interval: 1
  schedule: {{hours: [2], minutes: [0]}}
create_job: ./job.yml
""", {"unknown-key": (("trigger", "frequncy"), "day"), "wrong-type": (("trigger", "interval"), "abc"),
      "bad-name": (("name",), "bad name!"), "out-of-range": (("trigger", "schedule", "hours"), [25])}),
    "connection": ("""\
$schema: http://azureml/sdk-2-0/Connection.json
name: my-connection
type: custom
target: https://example.invalid
credentials: {type: api_key, key: "0000"}
""", {"unknown-key": (("credentials", "kye"), "x"), "wrong-type": (("target",), ["x"])}),
    "modelPackage": ("""\
target_environment: my-packaged-env
inferencing_server: {type: azureml_online, code_configuration: {code: ./src, scoring_script: score.py}}
base_environment_source: {type: environment_asset, resource_id: azureml:my-env:1}
""", {"unknown-key": (("inferencing_server", "code_configuration", "scoring_scrpt"), "x"),
      "wrong-type": (("target_environment",), ["x"]),
      "bad-name": (("target_environment",), "bad name!")}),
}
JOB = f"$schema: {BASE}commandJob.schema.json\ntype: command\ncommand: echo hi\nenvironment: {ENV}\n"


def _plant(data: Any, key_path: tuple, value: Any) -> Any:
    data = copy.deepcopy(data)
    node = data
    for part in key_path[:-1]:
        if isinstance(node, dict) and part not in node:
            node[part] = {}
        node = node[part]
    node[key_path[-1]] = value
    return data


def _write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / name
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "main.py").write_text("print('hi')\n")
    (folder / "job.yml").write_text(JOB)
    path = folder / "spec.yml"
    path.write_text(text)
    return path


def _dump(original: str, data: Any) -> str:
    head = [line for line in original.splitlines() if line.startswith("$schema:")]
    body = {k: v for k, v in data.items() if k != "$schema"}
    return "\n".join(head + [yaml.safe_dump(body, sort_keys=False, width=200)])


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """kind or kind/mutation -> that file's findings, from one validate_specs call over everything."""
    tmp_path = tmp_path_factory.mktemp("planted")
    specs, names = [], []
    for kind, (text, mutations) in SPECS.items():
        specs.append(parse_spec(_write(tmp_path, kind, text), kind))
        names.append(kind)
        data = yaml.safe_load(text)
        for label, (key_path, value) in mutations.items():
            name = f"{kind}/{label}"
            specs.append(parse_spec(_write(tmp_path, name, _dump(text, _plant(data, key_path, value))), name))
            names.append(name)
    report = validate_specs(specs)
    by_file: dict[str, list] = {name: [] for name in names}
    for finding in report.findings:
        by_file[finding.path].append(finding)
    kinds = {spec.display: spec.kind for spec in specs}
    return {**by_file, "__kinds__": kinds}  # type: ignore[dict-item]


@pytest.mark.parametrize("kind", list(SPECS))
def test_the_valid_spec_is_valid_and_its_kind(kind: str, verdicts: dict) -> None:
    assert verdicts["__kinds__"][kind] == kind
    assert [f.text() for f in verdicts[kind] if f.severity == ERROR] == []


CASES = [(kind, label) for kind, (_, mutations) in SPECS.items() for label in mutations]


@pytest.mark.parametrize(("kind", "label"), CASES, ids=[f"{k}-{m}" for k, m in CASES])
def test_each_planted_mistake_is_an_error_naming_its_key(kind: str, label: str, verdicts: dict) -> None:
    key_path = SPECS[kind][1][label][0]
    findings = verdicts[f"{kind}/{label}"]
    errors = [f for f in findings if f.severity == ERROR]
    assert any(tuple(f.key_path[: len(key_path)]) == key_path for f in errors), [f.text() for f in findings]


def test_every_kind_family_has_a_spec_and_the_mutations_it_can_take() -> None:
    families = {"commandJob", "pipelineJob", "sweepJob", "sparkJob", "autoMLJob", "finetuningJob", "commandComponent",
                "pipelineComponent", "sparkComponent", "parallelComponent", "amlCompute", "computeInstance",
                "vmCompute", "kubernetesCompute", "environment", "data", "dataImport", "model", "azureBlob",
                "azureFile", "azureDataLakeGen1", "azureDataLakeGen2", "managedOnlineEndpoint",
                "kubernetesOnlineEndpoint", "managedOnlineDeployment", "kubernetesOnlineDeployment", "batchEndpoint",
                "modelBatchDeployment", "pipelineComponentBatchDeployment", "workspace", "registry", "schedule",
                "connection", "modelPackage"}
    assert families <= set(SPECS)
    no_name_rule = {"connection"}  # Azure documents no naming rule for connections that we could cite
    for kind, (_, mutations) in SPECS.items():
        assert {"unknown-key", "wrong-type"} | ({"bad-name"} - ({"bad-name"} if kind in no_name_rule else set())) \
            <= set(mutations), kind
