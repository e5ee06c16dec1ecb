"""Every ``${{ ... }}`` in a spec, parsed by the grammar (``tools.validate.expressions``), placed and resolved.

* Syntax: each expression closes, is one of Azure's documented forms, and nothing is nested or left over.
* Placement: a command string (a command job's or component's ``command``, a parallel task's
  ``program_arguments``, ``input_data``, a spark job's ``args``, an inline pipeline step's ``command``) uses the
  current context, ``${{inputs.X}}``/``${{outputs.X}}`` (and ``${{search_space.X}}`` in a sweep trial); a pipeline
  step's inputs, outputs and settings use ``${{parent.…}}``; output paths may use the runtime expressions
  ``${{default_datastore}}``, ``${{name}}``, ``${{output_name}}``; control-flow blocks name one step.
  Sources: https://learn.microsoft.com/azure/machine-learning/concept-expressions and reference-yaml-core-syntax
  #expression-syntax-for-configuring-azureml-jobs-and-components.
* Resolution: what an expression names exists: the pipeline's inputs and outputs, its steps (and the outputs of a
  step whose interface is known), the job's or component's own inputs and outputs, the sweep's search space. The SDK
  refuses a command that names an undeclared input ("Invalid data binding expression",
  ``CommandComponent._validate_command``); a step bound to a missing pipeline input fails at submission.
* Values that must be one expression (a compute, an instance count or type, a data input's path, a step output
  bound to a pipeline output, a control-flow condition) hold nothing around it: the SDK takes
  ``${{parent.inputs.c}}-x`` for a literal compute name.
"""

from __future__ import annotations

import difflib
from typing import Any

from tools.validate.document import Spec
from tools.validate.expressions import ERROR, OPEN, WARNING, Defect, Expression, Parsed, Place
from tools.validate.expressions import check as check_text
from tools.validate.interfaces import step_contract
from tools.validate.rules._walk import strings_with
from tools.validate.rules.support import Emit, RuleContext

COMMAND_KEYS = ("command", "args", "program_arguments", "input_data", "output_data", "append_row_to")
NODE_KEYS = ("true_block", "false_block", "body")
SINGULAR_KEYS = (
    "compute", "instance_count", "instance_type", "process_count_per_instance", "max_concurrency_per_instance",
    "max_retries", "timeout", "error_threshold", "mini_batch_error_threshold", "condition",
)  # fmt: skip


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    if not isinstance(data, dict) or not spec.may_hold(OPEN):  # every check below starts at a `${{`
        return
    if isinstance(data.get("jobs"), dict):
        _pipeline(spec, data, (), emit)
    else:
        _document(data, (), emit, sweep="trial" in data)


# --------------------------------------------------------------------------------------------------- documents


def _document(data: dict, base: tuple, emit: Emit, sweep: bool = False, own: dict | None = None) -> None:
    """A command/sweep/parallel/spark job or component (or an inline step's command): the current context.

    ``own``: the inputs, outputs and search space the expressions resolve against when they are not ``data``'s own
    (an inline step's command resolves against the step)."""
    scope = own if own is not None else data
    for path, value in strings_with(data, OPEN, base):
        relative = path[len(base) :]
        if relative[:1] == ("outputs",):
            place = Place.OUTPUT_PATH
        elif relative[:1] == ("inputs",) and relative[-1:] in (("default",), ("description",)):
            continue  # a declared default or description is text, not an expression Azure evaluates
        else:
            place = Place.SWEEP_COMMAND if sweep and relative[:1] == ("trial",) else Place.COMMAND
        parsed, problems = check_text(value, place)
        if relative[:1] not in ((key,) for key in (*COMMAND_KEYS, "trial", "task", "inputs", "outputs")):
            # a setting of a component (resources, identity...): Azure documents no expression there, and a node's
            # own setting replaces it when the component runs in a pipeline; a misplaced form is a warning
            problems = [_soften(problem, parsed) for problem in problems]
        _emit_problems(path, problems, emit)
        for expression in parsed.expressions:
            if place is Place.OUTPUT_PATH:
                continue
            if expression.form in ("inputs", "outputs"):
                _resolve(path, expression, scope.get(expression.form), f"declared {expression.form[:-1]}", emit)
            elif expression.form == "search_space" and place is Place.SWEEP_COMMAND:
                _resolve(path, expression, scope.get("search_space"), "hyperparameter in search_space", emit)


def _pipeline(spec: Spec, data: dict, base: tuple, emit: Emit) -> None:
    """A pipeline job or pipeline component: its own outputs' paths, then every step in the parent context."""
    jobs = data["jobs"]
    outputs = data.get("outputs")
    for name, output in outputs.items() if isinstance(outputs, dict) else []:
        path = output.get("path") if isinstance(output, dict) else None
        if isinstance(path, str) and OPEN in path:
            _emit_problems((*base, "outputs", name, "path"), check_text(path, Place.OUTPUT_PATH)[1], emit)
    tables = {"inputs": data.get("inputs"), "outputs": outputs, "jobs": jobs}
    for step_name, step in jobs.items():
        if isinstance(step, dict):
            _step(spec, (*base, "jobs", step_name), step, tables, emit)


def _step(spec: Spec, base: tuple, step: dict, tables: dict, emit: Emit) -> None:
    """One pipeline step: its inputs, outputs and settings in the parent context; its own command (an inline step)
    in the step's context; an inline component as a document of its own."""
    own = {"inputs": step.get("inputs") or {}, "outputs": step.get("outputs") or {},
           "search_space": step.get("search_space") or {}}  # fmt: skip
    for key, node in step.items():
        if key == "component":
            if isinstance(node, dict) and not isinstance(node.get("jobs"), dict):
                _document(node, (*base, "component"), emit)
            continue
        if key in COMMAND_KEYS or key in ("trial", "task"):
            _document({key: node}, base, emit, sweep=key == "trial", own=own)
            continue
        for path, value in strings_with(node, OPEN, (*base, key)):
            relative = path[len(base) :]
            if key == "outputs":
                place, singular = Place.STEP_OUTPUT, len(relative) == 2
            elif key == "inputs":
                place, singular = Place.STEP, relative[-1] == "path"
            elif key in NODE_KEYS:
                place, singular = Place.NODE, True
            else:
                last = next((part for part in reversed(relative) if isinstance(part, str)), "")
                place, singular = Place.STEP, last in SINGULAR_KEYS
            parsed, problems = check_text(value, place, singular)
            _emit_problems(path, problems, emit)
            for expression in parsed.expressions:
                _resolve_parent(spec, path, expression, tables, emit)


def _resolve_parent(spec: Spec, path: tuple, expression: Expression, tables: dict, emit: Emit) -> None:
    form = expression.form
    if form in ("parent.inputs", "parent.outputs"):
        scope = form.split(".")[1]
        _resolve(path, expression, tables[scope], f"pipeline {scope[:-1]}", emit)
    elif form.startswith("parent.jobs"):
        step_name = expression.step or ""
        if not _resolve(path, expression, tables["jobs"], "step", emit, name=step_name):
            return
        if form != "parent.jobs":
            side = expression.parts[3]
            declared = _step_interface(spec, tables["jobs"].get(step_name), side)
            if declared is not None:
                _resolve(path, expression, declared, f"{side[:-1]} of step '{step_name}'", emit)


def _step_interface(spec: Spec, step: Any, side: str) -> dict | None:
    """A step's declared inputs or outputs when they can be known (an inline component or a known contract)."""
    if not isinstance(step, dict):
        return None
    component = step.get("component")
    if isinstance(component, dict):
        table = component.get(side)
        return table if isinstance(table, dict) else {}
    if component is None:  # an inline command step: what it declares is its interface
        table = step.get(side)
        return table if isinstance(table, dict) else ({} if side == "outputs" else None)
    contract, _ = step_contract(spec, step)
    return contract.get(side) if contract and isinstance(contract.get(side), dict) else None


def _resolve(path: tuple, expression: Expression, table: Any, what: str, emit: Emit, name: str | None = None) -> bool:
    """Emit a dangling-binding error unless ``name`` (default: the expression's) is a key of ``table``."""
    name = expression.name if name is None else name
    if isinstance(table, dict) and name in table:
        return True
    known = sorted(str(key) for key in table) if isinstance(table, dict) else []
    close = difflib.get_close_matches(name, known, n=1)
    hint = (
        f" (did you mean {close[0]}?)" if close else (f" (defined: {', '.join(known)})" if known else " (none defined)")
    )
    emit(path, f"dangling binding {expression.text}: no {what} '{name}'{hint}", ERROR, "binding")
    return False


def _soften(problem: Defect, parsed: Parsed) -> Defect:
    """A placement problem (not a syntax one) as a warning."""
    if any(problem.offset == expression.start for expression in parsed.expressions):
        return Defect(problem.offset, problem.message, WARNING)
    return problem


def _emit_problems(path: tuple, problems: list, emit: Emit) -> None:
    for problem in problems:
        emit(path, f"{problem.where()}: {problem.message}", problem.severity, "binding")
