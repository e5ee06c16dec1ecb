"""``${{parent...}}`` data bindings in a pipeline job's steps resolve to a pipeline input, output or step.

Grammar: https://learn.microsoft.com/azure/machine-learning/reference-yaml-core-syntax#binding-inputs-and-outputs-
between-steps-in-a-pipeline-job
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from tools.validate.document import Spec
from tools.validate.rules._walk import walk

BINDING = re.compile(
    r"\$\{\{\s*parent\.(inputs|outputs|jobs)\.([A-Za-z0-9_]+)(?:\.(outputs|inputs)\.([A-Za-z0-9_]+))?\s*\}\}"
)
ANY_BINDING = re.compile(r"\$\{\{\s*([^}]*)\}\}")


def parent_binding(value: Any) -> tuple[str, str] | None:
    """``("inputs"|"outputs"|"jobs", name)`` when ``value`` is exactly one ``${{parent...}}`` binding."""
    bound = BINDING.fullmatch(value.strip()) if isinstance(value, str) else None
    return (bound.group(1), bound.group(2)) if bound else None


def check(spec: Spec, emit, context) -> None:  # noqa: ANN001 - Emit, RuleContext (see rules/__init__)
    if spec.kind != "pipelineJob":
        return
    data = spec.data
    top_inputs = data.get("inputs") or {}
    top_outputs = data.get("outputs") or {}
    jobs = data.get("jobs") or {}
    if not isinstance(jobs, dict):
        return
    for path, value in walk(jobs, ("jobs",)):
        if not isinstance(value, str):
            continue
        for match in ANY_BINDING.finditer(value):
            expression = match.group(0)
            bound = BINDING.fullmatch(expression)
            if not bound:
                emit(
                    path,
                    f"unrecognised binding {expression} (expected ${{{{parent.inputs.X}}}}, "
                    "${{parent.outputs.X}} or ${{parent.jobs.STEP.outputs.X}})",
                    rule="binding",
                )
                continue
            scope, name = bound.group(1), bound.group(2)
            table = {"inputs": top_inputs, "outputs": top_outputs, "jobs": jobs}[scope]
            if not isinstance(table, dict) or name not in table:
                known = sorted(table) if isinstance(table, dict) else []
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else (f" (defined: {', '.join(known)})" if known else "")
                emit(
                    path,
                    f"dangling binding {expression}: the pipeline has no {scope[:-1] if scope != 'jobs' else 'step'} "
                    f"'{name}'{hint}",
                    rule="binding",
                )
