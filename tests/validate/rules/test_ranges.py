"""rules.ranges on literal dicts: Azure's numeric limits, and integers that are integers."""

from __future__ import annotations

from tools.validate.rules import ranges

CLUSTER = {"type": "amlcompute", "name": "gpu", "size": "Standard_NC24ads_A100_v4"}


def keys(found: list[tuple]) -> list[tuple]:
    return [f[0] for f in found]


def test_cluster_scale_limits(run_rule) -> None:
    ok = {**CLUSTER, "min_instances": 0, "max_instances": 4, "idle_time_before_scale_down": 0}
    assert run_rule(ranges.check, ok, kind="amlCompute") == []
    found = run_rule(ranges.check, {**CLUSTER, "min_instances": 3, "max_instances": 2}, kind="amlCompute")
    assert keys(found) == [("min_instances",)] and "greater than max_instances 2" in found[0][3]
    found = run_rule(ranges.check, {**CLUSTER, "idle_time_before_scale_down": -3}, kind="amlCompute")
    assert keys(found) == [("idle_time_before_scale_down",)] and "expected an integer >= 0, got -3" in found[0][3]
    found = run_rule(ranges.check, {**CLUSTER, "max_instances": 2**63}, kind="amlCompute")
    assert keys(found) == [("max_instances",)] and "32-bit" in found[0][3]
    found = run_rule(ranges.check, {**CLUSTER, "max_instances": 2.5, "min_instances": True}, kind="amlCompute")
    assert sorted(keys(found)) == [("max_instances",), ("min_instances",)]


def test_job_and_step_counts(run_rule) -> None:
    job = {"type": "command", "command": "echo", "resources": {"instance_count": 2**63},
           "distribution": {"type": "pytorch", "process_count_per_instance": 0}}  # fmt: skip
    assert keys(run_rule(ranges.check, job, kind="commandJob")) == [
        ("resources", "instance_count"), ("distribution", "process_count_per_instance")]  # fmt: skip
    step = {"type": "pipeline", "jobs": {"s": {"type": "command", "command": "echo",
                                               "resources": {"instance_count": "${{parent.inputs.n}}"}}}}  # fmt: skip
    assert run_rule(ranges.check, step, kind="pipelineJob") == []


def test_deployment_limits(run_rule) -> None:
    data = {"name": "blue", "endpoint_name": "chat", "instance_count": 0,
            "request_settings": {"request_timeout_ms": 180001, "max_concurrent_requests_per_instance": 1},
            "liveness_probe": {"period": 0, "initial_delay": 10},
            "scale_settings": {"type": "target_utilization", "min_instances": 3, "max_instances": 2}}  # fmt: skip
    found = run_rule(ranges.check, data, kind="managedOnlineDeployment")
    assert keys(found) == [("instance_count",), ("request_settings", "request_timeout_ms"),
                           ("liveness_probe", "period"), ("scale_settings", "min_instances")]  # fmt: skip
    assert "in 1..180000" in found[1][3]
    data = {
        "name": "blue",
        "endpoint_name": "chat",
        "instance_count": 1,
        "request_settings": {"request_timeout_ms": 180000},
    }
    assert run_rule(ranges.check, data, kind="managedOnlineDeployment") == []


def test_integer_inputs_hold_integers(run_rule) -> None:
    data = {"type": "command", "command": "echo ${{inputs.epochs}}", "inputs": {
        "epochs": {"type": "integer", "default": 2.5},
        "steps": {"type": "integer", "default": "3", "min": 1},
        "warmup": {"type": "integer", "default": 20, "min": 0, "max": 10},
        "lr": {"type": "number", "default": "fast"},
        "ratio": {"type": "number", "default": 0.5, "min": 0.0, "max": 1.0},
        "whole": {"type": "integer", "default": 2.0}}}  # fmt: skip
    found = run_rule(ranges.check, data, kind="commandComponent")
    assert keys(found) == [("inputs", "epochs", "default"), ("inputs", "warmup", "default"),
                           ("inputs", "lr", "default")]  # fmt: skip
    assert "must be an integer, got float 2.5" in found[0][3]
    assert "above the input's max 10" in found[1][3]


def test_pipeline_inputs_with_a_value(run_rule) -> None:
    data = {"type": "pipeline", "inputs": {"n": {"type": "integer", "value": 1.5}}, "jobs": {}}
    assert keys(run_rule(ranges.check, data, kind="pipelineJob")) == [("inputs", "n", "value")]


def test_minus_one_instances_on_a_parallel_component_is_a_warning(run_rule) -> None:
    data = {"type": "parallel", "resources": {"instance_count": -1}, "task": {"type": "run_function"}}
    assert [f[1] for f in run_rule(ranges.check, data, kind="parallelComponent")] == ["warning"]
    data["resources"]["instance_count"] = -2
    assert [f[1] for f in run_rule(ranges.check, data, kind="parallelComponent")] == ["error"]
