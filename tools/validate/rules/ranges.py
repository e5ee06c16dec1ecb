"""Numbers in Azure's ranges: instance and process counts, compute scale limits, online deployment request
settings and probes."""

from __future__ import annotations

from tools.validate.document import Spec
from tools.validate.rules._walk import is_expression, positive_int

PROBE_KEYS = ("initial_delay", "period", "timeout", "success_threshold", "failure_threshold")
MAX_REQUEST_TIMEOUT_MS = 180000


def check(spec: Spec, emit, context) -> None:  # noqa: ANN001 - Emit, RuleContext (see rules/__init__)
    data = spec.data
    if spec.kind in ("commandJob", "commandComponent"):
        check_scale(data, (), emit)
    elif spec.kind == "pipelineJob":
        jobs = data.get("jobs")
        for step_name, step in jobs.items() if isinstance(jobs, dict) else []:
            if isinstance(step, dict):
                check_scale(step, ("jobs", step_name), emit)
    elif spec.kind == "amlCompute":
        low, high = data.get("min_instances", 0), data.get("max_instances", 1)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            emit(("min_instances",), f"min_instances {low} is greater than max_instances {high}", rule="range")
        if isinstance(high, int) and high < 1:
            emit(("max_instances",), f"max_instances must be >= 1, got {high}", rule="range")
    elif spec.kind == "managedOnlineDeployment":
        _deployment(data, emit)


def check_scale(node: dict, base: tuple, emit) -> None:  # noqa: ANN001
    """instance_count and process_count_per_instance are integers >= 1 (or bindings), on a job or a step."""
    resources = node.get("resources") or {}
    count = resources.get("instance_count") if isinstance(resources, dict) else None
    if count is not None and not positive_int(count) and not is_expression(count):
        emit((*base, "resources", "instance_count"), f"expected an integer >= 1, got {count!r}", rule="range")
    distribution = node.get("distribution") or {}
    processes = distribution.get("process_count_per_instance") if isinstance(distribution, dict) else None
    if processes is not None and not positive_int(processes) and not is_expression(processes):
        emit(
            (*base, "distribution", "process_count_per_instance"),
            f"expected an integer >= 1, got {processes!r}",
            rule="range",
        )


def _deployment(data: dict, emit) -> None:  # noqa: ANN001
    count = data.get("instance_count")
    if count is not None and not positive_int(count):
        emit(("instance_count",), f"expected an integer >= 1, got {count!r}", rule="range")
    settings = data.get("request_settings") or {}
    if isinstance(settings, dict):
        timeout = settings.get("request_timeout_ms")
        if timeout is not None and (not positive_int(timeout) or timeout > MAX_REQUEST_TIMEOUT_MS):
            emit(
                ("request_settings", "request_timeout_ms"),
                f"expected 1..{MAX_REQUEST_TIMEOUT_MS} ms, got {timeout!r}",
                rule="range",
            )
        for key in ("max_concurrent_requests_per_instance",):
            if key in settings and not positive_int(settings[key]):
                emit(("request_settings", key), f"expected an integer >= 1, got {settings[key]!r}", rule="range")
        wait = settings.get("max_queue_wait_ms")
        if wait is not None and (isinstance(wait, bool) or not isinstance(wait, int) or wait < 0):
            emit(("request_settings", "max_queue_wait_ms"), f"expected an integer >= 0, got {wait!r}", rule="range")
    for probe in ("liveness_probe", "readiness_probe"):
        values = data.get(probe)
        if isinstance(values, dict):
            for key in PROBE_KEYS:
                if key in values and not positive_int(values[key]):
                    emit((probe, key), f"expected an integer > 0, got {values[key]!r}", rule="range")
