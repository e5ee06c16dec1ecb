"""Numbers in Azure's ranges, and integers that are integers.

Sources:
* Counts and times are 32-bit integers in Azure ML's REST API (``scaleSettings.maxNodeCount``/``minNodeCount``,
  ``nodeIdleTimeBeforeScaleDown``, ``resources.instanceCount``, an online deployment's ``instanceCount``,
  ``maxInstances``: ``System.Int32`` in the Microsoft.MachineLearningServices models of Azure PowerShell and the
  .NET SDK), so 2^63 instances is refused by the service whatever the quota; a float or a boolean is no count.
* AmlCompute: ``min_instances`` >= 0, ``max_instances`` >= 1, min <= max, ``idle_time_before_scale_down`` seconds
  >= 0 (reference-yaml-compute-aml: "min_instances: minimum number of nodes"; "idle_time_before_scale_down: idle
  time in seconds before scaling down").
* Jobs: ``resources.instance_count`` and ``distribution.process_count_per_instance`` >= 1.
* Managed online deployments (reference-yaml-deployment-managed-online): ``instance_count`` >= 1;
  ``request_settings.request_timeout_ms`` at most 180000 (the documented maximum, 3 minutes);
  ``max_concurrent_requests_per_instance`` >= 1; ``max_queue_wait_ms`` >= 0; probe settings (``initial_delay``,
  ``period``, ``timeout``, ``success_threshold``, ``failure_threshold``) > 0; target-utilization
  ``scale_settings`` min <= max.
* Declared inputs (components and jobs): a ``type: integer`` input's ``default``/``min``/``max`` are integers (the
  SDK turns 2.5 into 2 or refuses it, depending on the path; Azure's validation refuses it), a ``type: number``
  input's are numbers, and the default lies within ``min``..``max`` (reference-yaml-component-command, inputs).
* ``LIMITS`` below, per kind: sweep ``limits`` (reference-yaml-job-sweep: max_total_trials, max_concurrent_trials
  positive), AutoML ``limits`` (reference-yaml-job-automl: positive counts and minutes), a parallel component's
  ``max_concurrency_per_instance`` >= 1, a compute instance's idle shutdown minutes >= 0, TCP ports 1..65535 (a VM's
  ssh port, an environment's inference routes), an endpoint's ``traffic`` percentages 0..100, a recurrence
  schedule's hours 0..23 and minutes 0..59 (reference-yaml-schedule), Spark executor counts and cores >= 1.
Values that are ``${{...}}`` expressions are Azure's to fill in; their shape is rules.bindings'.
"""

from __future__ import annotations

from typing import Any

from tools.validate.document import Spec
from tools.validate.expressions import OPEN
from tools.validate.rules.support import Emit, RuleContext

INT32_MAX = 2**31 - 1
PROBE_KEYS = ("initial_delay", "period", "timeout", "success_threshold", "failure_threshold")
MAX_REQUEST_TIMEOUT_MS = 180000


_PORT = (1, 65535)
_SPARK = {("conf", "spark.executor.instances"): (1, INT32_MAX), ("conf", "spark.executor.cores"): (1, INT32_MAX),
          ("conf", "spark.driver.cores"): (1, INT32_MAX)}
_ROUTES = {("inference_config", route, "port"): _PORT for route in ("liveness_route", "readiness_route",
                                                                     "scoring_route")}
# kind -> {key path ("*": every key of a mapping or item of a list): (low, high)}
LIMITS: dict[str, dict[tuple, tuple[int, int]]] = {
    "sweepJob": {("limits", "max_total_trials"): (1, INT32_MAX), ("limits", "max_concurrent_trials"): (1, INT32_MAX)},
    "autoMLJob": {("limits", "max_trials"): (1, INT32_MAX), ("limits", "max_concurrent_trials"): (1, INT32_MAX),
                  ("limits", "timeout_minutes"): (1, INT32_MAX), ("limits", "trial_timeout_minutes"): (1, INT32_MAX)},
    "parallelComponent": {("max_concurrency_per_instance",): (1, INT32_MAX)},
    "computeInstance": {("idle_time_before_shutdown_minutes",): (0, INT32_MAX)},
    "vmCompute": {("ssh_settings", "ssh_port"): _PORT},
    "environment": _ROUTES,
    "managedOnlineEndpoint": {("traffic", "*"): (0, 100), ("mirror_traffic", "*"): (0, 100)},
    "kubernetesOnlineEndpoint": {("traffic", "*"): (0, 100), ("mirror_traffic", "*"): (0, 100)},
    "schedule": {("trigger", "schedule", "hours", "*"): (0, 23), ("trigger", "schedule", "minutes", "*"): (0, 59),
                 ("trigger", "interval"): (1, INT32_MAX)},
    "sparkJob": _SPARK,
    "sparkComponent": _SPARK,
}


def _limits(data: Any, limits: dict[tuple, tuple[int, int]], emit: Emit) -> None:
    for pattern, (low, high) in limits.items():
        for key_path, value in _matches(data, pattern, ()):
            problem = integer_problem(value, low, high) if not isinstance(value, (dict, list)) else None
            if problem and not (isinstance(value, str) and not _numeric(value)):  # a word is the schema's to report
                emit(key_path, problem, rule="range")


def _numeric(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _matches(node: Any, pattern: tuple, base: tuple) -> list[tuple[tuple, Any]]:
    if not pattern:
        return [(base, node)] if node is not None else []
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        return [m for key, value in items for m in _matches(value, rest, (*base, key))]
    if isinstance(node, dict) and head in node:
        return _matches(node[head], rest, (*base, head))
    return []


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    _limits(data, LIMITS.get(spec.kind or "", {}), emit)
    if spec.kind == "amlCompute":
        _compute(data, emit)
    elif spec.kind in ("managedOnlineDeployment", "kubernetesOnlineDeployment"):
        _deployment(data, emit)
    else:
        check_scale(data, (), emit)
        jobs = data.get("jobs")
        for step_name, step in jobs.items() if isinstance(jobs, dict) else []:
            if isinstance(step, dict):
                check_scale(step, ("jobs", step_name), emit)
                component = step.get("component")
                if isinstance(component, dict):
                    declared_inputs(component.get("inputs"), ("jobs", step_name, "component", "inputs"), emit)
        declared_inputs(data.get("inputs"), ("inputs",), emit)


def integer_problem(value: Any, low: int, high: int = INT32_MAX) -> str | None:
    """Why ``value`` is not an integer in ``low``..``high``, or None (expressions pass)."""
    if isinstance(value, str) and OPEN in value:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected an integer {_span(low, high)}, got {type(value).__name__} {value!r}"
    if not low <= value <= high:
        return f"expected an integer {_span(low, high)}, got {value}"
    return None


def _span(low: int, high: int) -> str:
    return f">= {low}" if high == INT32_MAX else f"in {low}..{high}"


def _int(node: dict, key: str, base: tuple, emit: Emit, low: int, high: int = INT32_MAX) -> Any:
    """Check ``node[key]`` when present; return it when it is a valid integer (else None)."""
    if key not in node or node[key] is None:
        return None
    problem = integer_problem(node[key], low, high)
    if problem:
        note = " (a 32-bit integer in Azure's API)" if isinstance(node[key], int) and node[key] > high else ""
        emit((*base, key), problem + note, rule="range")
        return None
    return node[key] if isinstance(node[key], int) else None


def _compute(data: dict, emit: Emit) -> None:
    low = _int(data, "min_instances", (), emit, 0)
    high = _int(data, "max_instances", (), emit, 1)
    if low is not None and high is not None and low > high:
        emit(("min_instances",), f"min_instances {low} is greater than max_instances {high}", rule="range")
    _int(data, "idle_time_before_scale_down", (), emit, 0)


def check_scale(node: dict, base: tuple, emit: Emit) -> None:
    """instance_count and process_count_per_instance are integers >= 1 (or expressions), on a job or a step."""
    resources = node.get("resources")
    if isinstance(resources, dict):
        if node.get("type") == "parallel" and resources.get("instance_count") == -1:
            # Azure documents counts >= 1, yet Azure's own registry parallel components ship -1 and load: we
            # cannot name how Azure fails on it, so it is a warning
            emit((*base, "resources", "instance_count"), "expected an integer >= 1, got -1 (Azure documents no "
                 "meaning for -1)", "warning", "range")  # fmt: skip
        else:
            _int(resources, "instance_count", (*base, "resources"), emit, 1)
    distribution = node.get("distribution")
    if isinstance(distribution, dict):
        _int(distribution, "process_count_per_instance", (*base, "distribution"), emit, 1)


def _deployment(data: dict, emit: Emit) -> None:
    _int(data, "instance_count", (), emit, 1)
    settings = data.get("request_settings")
    if isinstance(settings, dict):
        base = ("request_settings",)
        _int(settings, "request_timeout_ms", base, emit, 1, MAX_REQUEST_TIMEOUT_MS)
        _int(settings, "max_concurrent_requests_per_instance", base, emit, 1)
        _int(settings, "max_queue_wait_ms", base, emit, 0)
    for probe in ("liveness_probe", "readiness_probe"):
        values = data.get(probe)
        if isinstance(values, dict):
            for key in PROBE_KEYS:
                _int(values, key, (probe,), emit, 1)
    scale = data.get("scale_settings")
    if isinstance(scale, dict):
        low = _int(scale, "min_instances", ("scale_settings",), emit, 0)
        high = _int(scale, "max_instances", ("scale_settings",), emit, 1)
        if low is not None and high is not None and low > high:
            emit(("scale_settings", "min_instances"), f"min_instances {low} is greater than max_instances {high}",
                 rule="range")  # fmt: skip


def declared_inputs(inputs: Any, base: tuple, emit: Emit) -> None:
    """``type: integer``/``number`` inputs: default, min and max of that type, the default within min..max."""
    for name, facts in inputs.items() if isinstance(inputs, dict) else []:
        if not isinstance(facts, dict) or not isinstance(facts.get("type"), str):
            continue
        kind = facts["type"].lower()
        if kind not in ("integer", "number"):
            continue
        bounds: dict[str, float] = {}
        for key in ("default", "value", "min", "max"):
            value = facts.get(key)
            if value is None or (isinstance(value, str) and OPEN in value):
                continue
            number = _as_number(value, integer=kind == "integer")
            if number is None:
                what = "an integer" if kind == "integer" else "a number"
                emit((*base, name, key), f"a {kind} input's {key} must be {what}, got {type(value).__name__} "
                     f"{value!r}", rule="range")  # fmt: skip
            else:
                bounds[key] = number
        for key in ("default", "value"):
            if key not in bounds:
                continue
            if "min" in bounds and bounds[key] < bounds["min"]:
                emit((*base, name, key), f"{facts[key]!r} is below the input's min {facts['min']!r}", rule="range")
            if "max" in bounds and bounds[key] > bounds["max"]:
                emit((*base, name, key), f"{facts[key]!r} is above the input's max {facts['max']!r}", rule="range")


def _as_number(value: Any, integer: bool) -> float | None:
    """The value as Azure reads it for an integer/number input, or None. Strings that spell the number pass (Azure
    coerces ``"3"``); ``2.5`` for an integer does not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            return None
    if integer:
        if isinstance(value, float) and value.is_integer():
            return value  # 2.0: the same integer, as the SDK writes it back
        return value if isinstance(value, int) else None
    return value if isinstance(value, int | float) else None
