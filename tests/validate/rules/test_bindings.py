"""rules.bindings on literal dicts: valid binding forms pass where Azure allows them; dangling, malformed and
misplaced expressions are errors on their key."""

from __future__ import annotations

from tools.validate.expressions import parent_binding
from tools.validate.rules import bindings

OUTPUT_PATH = "azureml://datastores/${{default_datastore}}/paths/${{name}}/${{output_name}}"


def pipeline(jobs: dict, inputs: dict | None = None, outputs: dict | None = None) -> dict:
    return {"type": "pipeline", "inputs": inputs or {}, "outputs": outputs or {}, "jobs": jobs}


def test_command_job_uses_its_own_inputs_and_outputs(run_rule) -> None:
    data = {"type": "command", "command": "python t.py --lr ${{inputs.lr}} --out ${{outputs.model}}",
            "inputs": {"lr": 0.1}, "outputs": {"model": {"type": "uri_folder"}}, "compute": "azureml:gpu"}  # fmt: skip
    assert run_rule(bindings.check, data, kind="commandJob") == []


def test_command_naming_an_undeclared_input_is_dangling(run_rule) -> None:
    data = {"type": "command", "command": "python t.py --lr ${{inputs.lrr}}", "inputs": {"lr": 0.1}}
    [(key, severity, rule, message)] = run_rule(bindings.check, data, kind="commandJob")
    assert (key, severity, rule) == (("command",), "error", "binding")
    assert "no declared input 'lrr'" in message and "did you mean lr?" in message


def test_component_command_with_optional_block(run_rule) -> None:
    data = {"type": "command", "name": "train", "version": "1",
            "command": "python t.py --data ${{inputs.data}} $[[--lr ${{inputs.lr}}]] --out ${{outputs.model}}",
            "inputs": {"data": {"type": "uri_folder"}, "lr": {"type": "number", "optional": True}},
            "outputs": {"model": {"type": "uri_folder"}}}  # fmt: skip
    assert run_rule(bindings.check, data, kind="commandComponent") == []
    data["command"] = "python t.py $[[--lr ${{inputs.lr}}"
    [found] = run_rule(bindings.check, data, kind="commandComponent")
    assert found[0] == ("command",) and "never closed" in found[3]


def test_inline_pipeline_step_command_uses_the_step_inputs(run_rule) -> None:
    data = pipeline(
        {"prep": {"type": "command", "command": "python p.py --raw ${{inputs.raw}} --out ${{outputs.clean}}",
                  "inputs": {"raw": "${{parent.inputs.data}}"}, "outputs": {"clean": None}},
         "train": {"type": "command", "command": "python t.py ${{inputs.d}}",
                   "inputs": {"d": "${{parent.jobs.prep.outputs.clean}}"}}},
        inputs={"data": {"type": "uri_folder", "path": "azureml://datastores/d/paths/x"}},
    )  # fmt: skip
    assert run_rule(bindings.check, data, kind="pipelineJob") == []


def test_runtime_expressions_in_output_paths(run_rule) -> None:
    data = pipeline(
        {"s": {"type": "command", "command": "echo ${{outputs.o}}",
               "outputs": {"o": {"type": "uri_folder", "path": OUTPUT_PATH}}}},
        outputs={"final": {"type": "uri_folder", "path": "azureml://datastores/${{default_datastore}}/paths/${{name}}"}},
    )  # fmt: skip
    assert run_rule(bindings.check, data, kind="pipelineJob") == []
    job = {"type": "command", "command": "echo", "outputs": {"o": {"type": "uri_folder", "path": OUTPUT_PATH}}}
    assert run_rule(bindings.check, job, kind="commandJob") == []


def test_dangling_parent_bindings_name_what_exists(run_rule) -> None:
    data = pipeline(
        {"a": {"component": "./c.yml", "inputs": {"x": "${{parent.inputs.lerning_rate}}",
                                                    "y": "${{parent.jobs.prepp.outputs.o}}"},
               "outputs": {"m": "${{parent.outputs.modle}}"}},
         "prep": {"type": "command", "command": "echo", "outputs": {"o": None}}},
        inputs={"learning_rate": 0.1}, outputs={"model": {"type": "uri_folder"}},
    )  # fmt: skip
    found = {f[0]: f[3] for f in run_rule(bindings.check, data, kind="pipelineJob")}
    assert "no pipeline input 'lerning_rate' (did you mean learning_rate?)" in found[("jobs", "a", "inputs", "x")]
    assert "no step 'prepp' (did you mean prep?)" in found[("jobs", "a", "inputs", "y")]
    assert "no pipeline output 'modle'" in found[("jobs", "a", "outputs", "m")]


def test_a_step_output_the_step_does_not_declare(run_rule) -> None:
    data = pipeline({"prep": {"type": "command", "command": "echo", "outputs": {"clean": None}},
                     "train": {"type": "command", "command": "echo",
                               "inputs": {"d": "${{parent.jobs.prep.outputs.cleaned}}"}}})  # fmt: skip
    [found] = run_rule(bindings.check, data, kind="pipelineJob")
    assert found[0] == ("jobs", "train", "inputs", "d") and "no output of step 'prep' 'cleaned'" in found[3]


def test_malformed_expressions_in_a_step(run_rule) -> None:
    data = pipeline(
        {"a": {"component": "./c.yml", "compute": "${{parent.inputs.cluster}}-x",
               "inputs": {"x": "${{parent.inputs.n}", "y": "${{inputs.n}}"},
               "resources": {"instance_count": "${{parent.inputs.n}}}"}}},
        inputs={"n": 1, "cluster": "gpu"},
    )  # fmt: skip
    found = {f[0]: f[3] for f in run_rule(bindings.check, data, kind="pipelineJob")}
    compute = found[("jobs", "a", "compute")]
    assert compute.startswith("at character 27: ") and "exactly one expression" in compute
    assert "single '}'" in found[("jobs", "a", "inputs", "x")]
    assert "expected ${{parent.inputs.n}}" in found[("jobs", "a", "inputs", "y")]
    assert "third '}'" in found[("jobs", "a", "resources", "instance_count")]


def test_control_flow_blocks_and_conditions(run_rule) -> None:
    data = pipeline({
        "pick": {"type": "command", "command": "echo", "outputs": {"flag": {"type": "boolean"}}},
        "a": {"type": "command", "command": "echo"},
        "b": {"type": "command", "command": "echo"},
        "branch": {"type": "if_else", "condition": "${{parent.jobs.pick.outputs.flag}}",
                   "true_block": "${{parent.jobs.a}}", "false_block": "${{parent.jobs.c}}"},
    })  # fmt: skip
    [found] = run_rule(bindings.check, data, kind="pipelineJob")
    assert found[0] == ("jobs", "branch", "false_block") and "no step 'c'" in found[3]


def test_sweep_trial_uses_the_search_space(run_rule) -> None:
    data = {"type": "sweep", "search_space": {"lr": {"type": "uniform", "min_value": 0.01, "max_value": 0.1}},
            "inputs": {"d": {"type": "uri_folder", "path": "azureml://datastores/d/paths/x"}},
            "trial": {"command": "t.py ${{inputs.d}} --lr ${{search_space.lr}} -b ${{search_space.b}}"}}  # fmt: skip
    [found] = run_rule(bindings.check, data, kind="sweepJob")
    assert found[0] == ("trial", "command") and "no hyperparameter in search_space 'b'" in found[3]


def test_parent_binding_helper() -> None:
    assert parent_binding(" ${{ parent.inputs.x }} ") == ("inputs", "x")
    assert parent_binding("${{parent.jobs.s.outputs.o}}") == ("jobs", "s")
    assert parent_binding("${{parent.inputs.x}}/more") is None
    assert parent_binding("${{inputs.x}}") is None
    assert parent_binding("${{parent.inputs.x}") is None


def test_a_datastore_uri_built_from_runtime_expressions_is_well_formed(run_rule) -> None:
    from tools.validate.rules import uris

    data = pipeline({"s": {"type": "command", "command": "echo", "outputs": {"o": {"path": OUTPUT_PATH}}}})
    assert run_rule(uris.check, data, kind="pipelineJob") == []
    data["jobs"]["s"]["outputs"]["o"]["path"] = "azureml://datastores/${{default_datastore}}/${{name}}"
    [found] = run_rule(uris.check, data, kind="pipelineJob")
    assert found[2] == "uri" and "${{default_datastore}}" in found[3]  # the message shows the value as written


def test_a_component_setting_naming_a_parent_input_is_a_warning_but_a_broken_expression_an_error(run_rule) -> None:
    data = {"type": "spark", "args": "--a ${{inputs.a}}", "inputs": {"a": {"type": "string"}},
            "resources": {"instance_type": "${{parent.inputs.instance_type}}"},
            "identity": {"type": "managed", "client_id": "${{inputs.a}"}}  # fmt: skip
    found = {f[0]: f[1] for f in run_rule(bindings.check, data, kind="sparkComponent")}
    assert found == {("resources", "instance_type"): "warning", ("identity", "client_id"): "error"}
