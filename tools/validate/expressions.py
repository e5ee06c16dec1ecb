"""The grammar of Azure ML expressions: every ``${{ ... }}`` in a string, parsed, classified and placed.

Pure functions over one string; the rules in ``tools.validate.rules.bindings`` resolve what an expression names.

What Azure documents (cited once, here):

* The form is ``${{ <expression> }}``, spaces allowed inside the braces (the SDK's own pattern is
  ``\\$\\{\\{\\s*(\\S*?)\\s*\\}\\}``, ``azure.ai.ml._utils.utils.get_all_data_binding_expressions``).
* Client expressions (https://learn.microsoft.com/azure/machine-learning/concept-expressions):
  ``inputs.<input>`` and ``outputs.<output>`` (all jobs), ``search_space.<hyperparameter>`` (sweep jobs only),
  ``parent.inputs.<input>``, ``parent.outputs.<output>``, ``parent.jobs.<step>.inputs.<input>`` and
  ``parent.jobs.<step>.outputs.<output>`` (pipeline jobs only).
* Server (runtime) expressions, for output paths (includes/output-path-expressions.md of the same page):
  ``default_datastore``, ``name`` (the job's, or the step job's, name) and ``output_name``, as in
  ``azureml://datastores/${{default_datastore}}/paths/${{name}}/${{output_name}}``.
* Where (https://learn.microsoft.com/azure/machine-learning/reference-yaml-core-syntax#expression-syntax-for-
  configuring-azureml-jobs-and-components): the ``command`` of a job or component uses the current context
  (``inputs.X`` / ``outputs.X``); a pipeline step's ``inputs``/``outputs`` (and its other settings) are evaluated in
  the parent context, so they use ``parent.…``. The SDK refuses the old ``${{inputs.X}}`` form there ("has changed
  to ${{parent.inputs.X}}", ``_pipeline_job_helpers.process_sdk_component_job_io``).
* Optional inputs in a component command are wrapped in ``$[[ ... ]]`` (same page, "Define optional inputs in
  command line").
* Control-flow nodes name a step: ``true_block``/``false_block``/``body`` take ``${{parent.jobs.<step>}}`` and
  nothing else (the SDK's ``NodeBindingStr`` requires a singular binding).
* Names are Python identifiers (``is_valid_node_name`` for steps; inputs and outputs likewise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

OPEN, CLOSE = "${{", "}}"
OPTIONAL_OPEN, OPTIONAL_CLOSE = "$[[", "]]"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RUNTIME = ("default_datastore", "name", "output_name")  # server expressions, documented for output paths

ERROR = "error"
WARNING = "warning"


class Place(Enum):
    """Where a string stands in a spec, which decides the expressions Azure allows in it."""

    COMMAND = "command"  # command / args / program_arguments / input_data of a job or component (current context)
    SWEEP_COMMAND = "sweep command"  # a sweep job's trial command: also search_space.X
    STEP = "step"  # a pipeline step's inputs and settings (parent context)
    STEP_OUTPUT = "step output"  # a pipeline step's output (binding or path): parent.outputs.X and runtime forms
    OUTPUT_PATH = "output path"  # a job's own output path: runtime forms only
    NODE = "node"  # true_block / false_block / body of a control-flow node: parent.jobs.STEP


@dataclass(frozen=True)
class Expression:
    """One ``${{ ... }}``: where it is in the string (``start`` inclusive, ``end`` exclusive) and its dotted name."""

    start: int
    end: int
    text: str
    parts: tuple[str, ...]

    @property
    def form(self) -> str:
        """``parent.inputs``, ``parent.outputs``, ``parent.jobs``, ``parent.jobs.inputs``, ``parent.jobs.outputs``,
        ``inputs``, ``outputs``, ``search_space`` or ``runtime`` (parse only builds these)."""
        if self.parts[0] == "parent":
            if self.parts[1] == "jobs":
                return "parent.jobs" if len(self.parts) == 3 else f"parent.jobs.{self.parts[3]}"
            return f"parent.{self.parts[1]}"
        return "runtime" if len(self.parts) == 1 else self.parts[0]

    @property
    def name(self) -> str:
        """The input, output, step, hyperparameter or runtime value the expression names."""
        return self.parts[-1]

    @property
    def step(self) -> str | None:
        return self.parts[2] if self.parts[:2] == ("parent", "jobs") else None


@dataclass(frozen=True)
class Defect:
    """What is wrong at ``offset`` (0-based) in the string."""

    offset: int
    message: str
    severity: str = ERROR

    def where(self) -> str:
        return f"at character {self.offset + 1}"


@dataclass(frozen=True)
class Parsed:
    text: str
    expressions: tuple[Expression, ...]
    problems: tuple[Defect, ...]

    @property
    def singular(self) -> bool:
        """The whole string (bar surrounding spaces) is exactly one expression."""
        return len(self.expressions) == 1 and self.text.strip() == self.expressions[0].text


def has_expression(text: object) -> bool:
    return isinstance(text, str) and OPEN in text


def parse(text: str, optional_blocks: bool = False) -> Parsed:
    """Every ``${{ ... }}`` of ``text`` and every syntax problem, each with its position.

    ``optional_blocks``: ``$[[ ... ]]`` is allowed (a component command) and must close, unnested."""
    expressions: list[Expression] = []
    problems: list[Defect] = []
    index = 0
    optional_at: int | None = None
    while True:  # jump from token to token (str.find), not character by character
        index = _next_token(text, index, optional_blocks, optional_at is not None)
        if index < 0:
            break
        if text.startswith(OPEN, index):
            index = _expression(text, index, expressions, problems)
        elif text.startswith(OPTIONAL_OPEN, index):
            if optional_at is not None:
                problems.append(Defect(index, f"'$[[' inside the optional block opened at character "
                                        f"{optional_at + 1}: optional blocks do not nest"))  # fmt: skip
            optional_at = index
            index += len(OPTIONAL_OPEN)
        else:  # OPTIONAL_CLOSE of an open block
            optional_at = None
            index += len(OPTIONAL_CLOSE)
    if optional_at is not None:
        problems.append(Defect(optional_at, "optional block '$[[' is never closed: expected ']]'"))
    return Parsed(text, tuple(expressions), tuple(problems))


def _next_token(text: str, index: int, optional_blocks: bool, block_open: bool) -> int:
    """Where the next ``${{`` (and, with ``optional_blocks``, ``$[[`` or, inside a block, ``]]``) starts; -1."""
    found = [text.find(OPEN, index)]
    if optional_blocks:
        found.append(text.find(OPTIONAL_OPEN, index))
        if block_open:
            found.append(text.find(OPTIONAL_CLOSE, index))
    found = [at for at in found if at >= 0]
    return min(found) if found else -1


def _expression(text: str, start: int, expressions: list[Expression], problems: list[Defect]) -> int:
    """Parse the expression opening at ``start``; return the index just after it (or where scanning resumes)."""
    body_start = start + len(OPEN)
    brace = text.find("}", body_start)  # the first '}' ends the body: '}}' closes it, a single one is a slip
    nested = text.find(OPEN, body_start, brace if brace >= 0 else len(text))
    if nested >= 0:
        problems.append(Defect(nested, f"'${{{{' inside the expression opened at character {start + 1}: "
                                "expressions do not nest (close the first with '}}')"))  # fmt: skip
        return _skip_nested(text, nested)
    if brace >= 0:
        index = brace
        if text.startswith(CLOSE, index):
            end = index + len(CLOSE)
            if text.startswith("}", end):
                problems.append(Defect(end, "a third '}' after '}}': an expression closes with exactly '}}'"))
            _body(text, start, body_start, index, end, expressions, problems)
            while text.startswith("}", end):
                end += 1
            return end
        problems.append(Defect(index, f"a single '}}' closes the expression opened at character {start + 1}: "
                                "expected '}}'"))  # fmt: skip
        return index + 1
    problems.append(Defect(start, f"'${{{{' is never closed: expected '}}}}' after {text[body_start:][:40]!r}"))
    return len(text)


def _skip_nested(text: str, index: int) -> int:
    """Past the '}}' that closes the outer expression of a nested one (one problem, not a cascade)."""
    depth = 1
    while index < len(text):
        if text.startswith(OPEN, index):
            depth += 1
            index += len(OPEN)
        elif text.startswith(CLOSE, index):
            depth -= 1
            index += len(CLOSE)
            if depth == 0:
                return index
        else:
            index += 1
    return index


def _body(
    text: str, start: int, body_start: int, body_end: int, end: int, out: list[Expression], problems: list[Defect]
) -> None:
    raw = text[body_start:body_end]
    body = raw.strip()
    offset = body_start + (len(raw) - len(raw.lstrip()))
    if not body:
        problems.append(Defect(start, "empty expression '${{}}': expected a name such as inputs.X"))
        return
    parts = body.split(".")
    position = offset
    for part in parts:
        if not IDENTIFIER.fullmatch(part):
            bad = position + _first_bad(part)
            problems.append(Defect(bad, f"{text[start:end]!r}: expected a dotted name of identifiers "
                                    f"(letters, digits, '_'), got {body!r}"))  # fmt: skip
            return
        position += len(part) + 1
    message = _form_problem(tuple(parts))
    if message:
        problems.append(Defect(offset, f"{text[start:end]!r}: {message}"))
        return
    out.append(Expression(start, end, text[start:end], tuple(parts)))


def _first_bad(part: str) -> int:
    for index, char in enumerate(part):
        if not (char.isascii() and (char.isalnum() or char == "_")) or (index == 0 and char.isdigit()):
            return index
    return 0  # empty segment: the offending '.' is just before


KNOWN_FORMS = (
    "inputs.X, outputs.X, search_space.X, parent.inputs.X, parent.outputs.X, parent.jobs.STEP, "
    "parent.jobs.STEP.outputs.X, parent.jobs.STEP.inputs.X, default_datastore, name or output_name"
)


def _form_problem(parts: tuple[str, ...]) -> str | None:
    """Why ``parts`` is none of Azure's documented forms, or None."""
    head = parts[0]
    if head == "parent":
        if len(parts) == 3 and parts[1] in ("inputs", "outputs", "jobs"):
            return None
        if len(parts) == 5 and parts[1] == "jobs" and parts[3] in ("inputs", "outputs"):
            return None
        return (
            "expected parent.inputs.X, parent.outputs.X, parent.jobs.STEP, parent.jobs.STEP.outputs.X or "
            "parent.jobs.STEP.inputs.X"
        )
    if head in ("inputs", "outputs", "search_space"):
        return None if len(parts) == 2 else f"expected {head}.X (one name after '{head}.')"
    if len(parts) == 1 and head in RUNTIME:
        return None
    return f"unknown expression (Azure documents {KNOWN_FORMS})"


def substitute(text: str, stand_in: str = "x") -> str:
    """``text`` with each well-formed expression replaced by ``stand_in`` (to check the shape around expressions,
    e.g. a datastore URI whose datastore is ``${{default_datastore}}``); malformed ones stay as they are."""
    parsed = parse(text)
    for expression in reversed(parsed.expressions):
        text = text[: expression.start] + stand_in + text[expression.end :]
    return text


# --------------------------------------------------------------------------------------------------- placement

_ALLOWED: dict[Place, tuple[str, ...]] = {
    Place.COMMAND: ("inputs", "outputs"),
    Place.SWEEP_COMMAND: ("inputs", "outputs", "search_space"),
    Place.STEP: ("parent.inputs", "parent.jobs.outputs", "parent.jobs.inputs"),
    Place.STEP_OUTPUT: ("parent.outputs", "runtime"),
    Place.OUTPUT_PATH: ("runtime",),
    Place.NODE: ("parent.jobs",),
}
_SINGULAR = {Place.NODE}


def placement_problems(parsed: Parsed, place: Place, singular: bool = False) -> list[Defect]:
    """Expressions that Azure does not allow where ``parsed`` stands, and text around a value that must be one
    expression (``singular``: a number, a compute name, a data input bound to another's output)."""
    problems: list[Defect] = []
    allowed = _ALLOWED[place]
    for expression in parsed.expressions:
        form = expression.form
        if form in allowed:
            continue
        problems.append(_misplaced(expression, place, allowed))
    if (singular or place in _SINGULAR) and parsed.expressions and not parsed.singular:
        first, text = parsed.expressions[0], parsed.text
        before = len(text[: first.start]) - len(text[: first.start].lstrip())
        after = first.end + len(text[first.end :]) - len(text[first.end :].lstrip())
        junk = before if before < first.start else after
        problems.append(Defect(junk, f"{text.strip()!r}: expected exactly one expression here, nothing around it"))
    return problems


def _misplaced(expression: Expression, place: Place, allowed: tuple[str, ...]) -> Defect:
    text, form = expression.text, expression.form
    if place in (Place.STEP, Place.STEP_OUTPUT) and form in ("inputs", "outputs"):
        fixed = "${{parent." + ".".join(expression.parts) + "}}"
        return Defect(expression.start, f"{text} in a pipeline step: step inputs and outputs are evaluated in the "
                       f"parent pipeline's context (expected {fixed})")  # fmt: skip
    if form == "runtime" and place not in (Place.OUTPUT_PATH, Place.STEP_OUTPUT):
        return Defect(expression.start, f"{text} is a runtime expression Azure documents for output paths only",
                       WARNING)  # fmt: skip
    if form == "search_space":
        return Defect(expression.start, f"{text}: search_space.X is for a sweep job's trial command only")
    if form.startswith("parent") and place in (Place.COMMAND, Place.SWEEP_COMMAND, Place.OUTPUT_PATH):
        return Defect(expression.start, f"{text}: parent.… bindings belong in a pipeline step's inputs and outputs; "
                       "a command uses ${{inputs.X}} / ${{outputs.X}}")  # fmt: skip
    return Defect(expression.start, f"{text} is not allowed in a {place.value} (expected {_describe(allowed)})")


def _describe(forms: tuple[str, ...]) -> str:
    names = {
        "inputs": "${{inputs.X}}",
        "outputs": "${{outputs.X}}",
        "search_space": "${{search_space.X}}",
        "parent.inputs": "${{parent.inputs.X}}",
        "parent.outputs": "${{parent.outputs.X}}",
        "parent.jobs": "${{parent.jobs.STEP}}",
        "parent.jobs.outputs": "${{parent.jobs.STEP.outputs.X}}",
        "parent.jobs.inputs": "${{parent.jobs.STEP.inputs.X}}",
        "runtime": "${{default_datastore}} / ${{name}} / ${{output_name}}",
    }
    return ", ".join(names[form] for form in forms)


def check(text: str, place: Place, singular: bool = False) -> tuple[Parsed, list[Defect]]:
    """Parse ``text`` as it stands at ``place``: the parse and every syntax and placement problem, in order."""
    parsed = parse(text, optional_blocks=place in (Place.COMMAND, Place.SWEEP_COMMAND))
    syntax = {problem.offset for problem in parsed.problems}  # one problem per position: syntax wins
    placed = [problem for problem in placement_problems(parsed, place, singular) if problem.offset not in syntax]
    problems = [*parsed.problems, *placed]
    return parsed, sorted(problems, key=lambda p: p.offset)


def parent_binding(value: Any) -> tuple[str, str] | None:
    """``("inputs"|"outputs"|"jobs", name)`` when ``value`` is exactly one ``${{parent...}}`` binding (for a step:
    its name)."""
    if not isinstance(value, str) or OPEN not in value:
        return None
    parsed = parse(value)
    if parsed.problems or not parsed.singular:
        return None
    expression = parsed.expressions[0]
    if expression.parts[0] != "parent":
        return None
    return expression.parts[1], expression.parts[2]
