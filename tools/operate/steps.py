"""The Step model of a plan and its rendering as copy-pasteable POSIX shell.

A plan is a list of ``Step`` values built by pure functions (``tools.operate.stages``); ``tools.operate.apply`` runs
them, ``tools.operate.plan`` prints them through ``format_plan``. A step's ``action`` says how apply runs it:

  run       the command as it is (a capture reads `--query X -o tsv` output into a variable)
  ensure    show first; create what is missing, update what differs (``update`` argv), skip what is equal;
            without ``update`` the resource is an immutable version: an existing one is left as it is
  model-free  the model version the job will register must not exist yet (versions are immutable)
  rollout   the deployment: all traffic at once on a new endpoint, blue/green beside a live one (``sets``: the
            `--set key=value` overrides of its spec, e.g. the model a `type: finetuning` job registered)
  follow    stream a job's logs; its exit code does not decide (the job-wait step after it does)
  job-wait  ask for a submitted job's status until it is terminal (Completed, Failed, Canceled); it must be Completed
A step's ``script`` (the rollout's two branches) replaces its one shell line in the printed plan. Printed lines
stay within ``WIDTH`` characters: a command continues on the next line after a backslash, a comment after `#     `.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass, field
from typing import Any

VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
JOB_NAME_VAR = "JOB_NAME"
SAMPLE_REQUEST = "endpoints/sample_score.json"
SAMPLE_REQUEST_HINT = "python -m tools score sample-request"
WIDTH = 120  # printed plan lines (a single word longer than this stays whole)
CONTINUED = "    "  # indentation of a command's continuation lines
COMMENT_CONTINUED = "#     "  # the prefix of a comment's continuation lines


@dataclass(frozen=True)
class Step:
    """One step of a plan. ``argv`` may hold ``${VAR}`` references to values captured by earlier steps."""

    name: str  # stage.what, e.g. "train.job-submit"
    stage: str
    argv: tuple[str, ...]
    description: str
    action: str = "run"
    captures: str | None = None  # variable set from the command's stdout (`--query ... -o tsv`)
    captures_more: tuple[str, ...] = ()  # further variables the step sets (the evaluation's verdict step)
    expect: str | None = None  # the captured value must be exactly this
    destructive: bool = False  # refused by apply without --yes
    show: tuple[str, ...] | None = None  # `az ... show` of the resource (ensure, model-free, rollout)
    update: tuple[str, ...] | None = None  # `az ... update` of an existing resource (ensure)
    spec: str | None = None  # the `-f` file, repo-relative
    kind: str | None = None  # the spec's kind (schemas/kinds.yaml)
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the spec's content
    needs_files: tuple[str, ...] = ()  # local files that must exist before the step runs
    on_failure: tuple[tuple[str, ...], ...] = ()  # commands that help diagnose a failure (printed, not run)
    notes: tuple[str, ...] = ()  # comment lines printed with the plan (quota needs, the rollout's path)
    sets: tuple[str, ...] = ()  # `--set key=value` overrides of the spec (rollout), may hold ${VAR}
    script: str | None = None  # the shell the plan prints instead of one line (the rollout's branches)

    def variables(self) -> list[str]:
        """The ``${VAR}`` names this step reads."""
        words = [*self.argv, *(self.show or ()), *(self.update or ()), *self.sets]
        return list(dict.fromkeys(name for word in words for name in VARIABLE.findall(word)))


def free_variables(steps: list[Step]) -> list[str]:
    """Variables read before any step of the plan captures them (must come from the caller, e.g. JOB_NAME)."""
    captured: set[str] = set()
    free: list[str] = []
    for step in steps:
        free += [v for v in step.variables() if v not in captured and v not in free]
        captured.update(v for v in (step.captures, *step.captures_more) if v)
    return free


def shell_word(word: str) -> str:
    """Quote one argument for POSIX sh, keeping ``${VAR}`` references live (double quotes)."""
    if not VARIABLE.search(word):
        return shlex.quote(word)
    if re.fullmatch(r"[A-Za-z0-9_./:@=${}-]+", word):
        return f'"{word}"'
    escaped = re.sub(r'(["\\`])', r"\\\1", word)
    return f'"{escaped}"'


def shell_command(argv: tuple[str, ...] | list[str]) -> str:
    return " ".join(shell_word(w) for w in argv)


def shell_line(step: Step) -> str:
    """One step as shell: captures become VAR=$(...); ensure becomes show-then-update-or-create."""
    if step.script is not None:
        return step.script
    command = shell_command(step.argv)
    if step.captures:
        line = f"{step.captures}=$({command})"
        if step.expect is not None:
            line += f'\ntest "${step.captures}" = {shlex.quote(step.expect)}'
        else:
            line += f'\ntest -n "${step.captures}"'
        return line
    if step.action == "follow":
        return f"{command} || true"
    if step.action == "model-free" and step.show:
        return f"! {shell_command(step.show)} >/dev/null 2>&1"
    if step.show and step.update:
        return (
            f"if {shell_command(step.show)} >/dev/null 2>&1; then\n  {shell_command(step.update)}\n"
            f"else\n  {command}\nfi"
        )
    if step.show:
        return f"{shell_command(step.show)} >/dev/null 2>&1 || \\\n  {command}"
    return command


def format_plan(title: str, invocation: str, steps: list[Step]) -> str:
    lines = [
        "#!/usr/bin/env bash",
        f"# {title}",
        f"# Generated by `{invocation}` from validated specs; run from the repo root.",
        "set -euo pipefail",
    ]
    for var in free_variables(steps):
        hint = "the fine-tune job's name (az ml job list -o table)" if var == JOB_NAME_VAR else "a value"
        lines.append(f': "${{{var}:?set {var} to {hint}}}"')
    current = None
    for step in steps:
        if step.stage != current:
            current = step.stage
            lines += ["", f"# == {current} =="]
        lines.append(f"# {step.name}: {step.description}" + ("  [destructive]" if step.destructive else ""))
        lines += [f"#   {note}" for note in step.notes]
        for needed in step.needs_files:
            hint = f": {SAMPLE_REQUEST_HINT}" if needed == SAMPLE_REQUEST else ""
            lines.append(f"#   needs {needed}{hint}")
        lines.append(shell_line(step))
        for hint in step.on_failure:
            lines.append(f"#   if it fails: {shell_command(hint)}")
    return "\n".join(wrap(line) for text in lines for line in text.split("\n")) + "\n"


def split_points(line: str) -> list[int]:
    """Indexes of the spaces where a shell line may continue on the next line: outside single quotes, and outside
    double quotes unless inside a `$(...)` within them (a backslash-newline there is a line continuation)."""
    points: list[int] = []
    stack: list[str] = []  # "'", '"', "$(" contexts
    i = 0
    while i < len(line):
        char, top = line[i], (stack[-1] if stack else "")
        if top == "'":
            if char == "'":
                stack.pop()
        elif char == "\\":
            i += 1  # the escaped character
        elif char == "'" and top != '"':
            stack.append("'")
        elif char == '"':
            if top == '"':
                stack.pop()
            else:
                stack.append('"')
        elif line.startswith("$(", i):
            stack.append("$(")
            i += 1
        elif char == ")" and top == "$(":
            stack.pop()
        elif char == " " and top != '"' and i > 0 and line[i - 1] != " ":
            points.append(i)
        i += 1
    return points


def wrap(line: str, width: int = WIDTH) -> str:
    """One printed line within ``width`` characters where it can be split (see ``split_points``)."""
    if len(line) <= width:
        return line
    indent = line[: len(line) - len(line.lstrip(" "))]
    if line.lstrip().startswith("#"):
        return "\n".join(textwrap.wrap(line.lstrip(), width, initial_indent=indent, break_long_words=False,
                                       subsequent_indent=indent + COMMENT_CONTINUED, break_on_hyphens=False))
    points = split_points(line)
    options = [i for i in points if line.startswith(" -", i)]  # breaking before an option reads best
    for candidates in (options, points):
        lines = _pack(line, candidates, indent + CONTINUED, width)
        if all(len(text) <= width for text in lines):
            break
    return "\n".join(lines)


def _pack(line: str, points: list[int], continued: str, width: int) -> list[str]:
    """Greedy: as many words on each line as fit, breaking only at ``points``."""
    out: list[str] = []
    prefix, start, last = "", 0, None
    for point in [*points, len(line)]:
        if len(prefix) + point - start + 2 > width and last is not None and last > start:
            out.append(prefix + line[start:last] + " \\")
            prefix, start = continued, last + 1
        last = point
    out.append(prefix + line[start:])
    return out
