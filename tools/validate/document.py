"""A spec file as the validator sees it, and layer A (YAML hygiene): it parses, has no duplicate keys, and its
`$schema` line names the kind its content is (tools.validate.kind), no unfilled template placeholder is left."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.core.repo import kinds, schema_url
from tools.core.yamlio import YamlProblem, line_of, load_lined, read_text
from tools.validate.findings import ERROR, WARNING, Finding
from tools.validate.kind import infer_kind, mismatch, read_schema_line

ESCAPE = re.compile(r"\\[xuUN_LP\r\n]")  # a double-quoted escape that spells other characters than it shows
MODEL_TYPES = {"mlflow_model", "custom_model", "triton_model"}
DATA_TYPES = {"uri_file", "uri_folder", "mltable"}


@dataclass
class Spec:
    path: Path  # where the file is (or would be): relative references resolve from here
    display: str  # how findings name it
    text: str
    data: Any = None
    kind: str | None = None
    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None  # not an az ml spec (a Prompt flow file, an MLTable...): why it is not checked
    placeholders: list[str] = field(default_factory=list)  # unfilled template placeholders: other layers skipped

    def may_hold(self, token: str) -> bool:
        """Whether some key or value could contain ``token``: each is a piece of the text, unless a double-quoted
        escape (``\\x24``, an escaped line break) spells it. Lets a rule skip a walk of every value."""
        return token in self.text or ("\\" in self.text and ESCAPE.search(self.text) is not None)

    def line(self, key_path: tuple) -> int | None:
        return line_of(self.data, key_path) if self.data is not None else None

    def finding(self, key_path: tuple, message: str, layer: str, severity: str = "error", rule: str = "") -> Finding:
        return Finding(self.display, self.line(key_path), tuple(key_path), message, layer, severity, rule)


def parse_spec(path: Path, display: str, text: str | None = None) -> Spec:
    """Read and parse a spec; layer A findings go into ``spec.findings``. ``spec.kind`` is None when unusable."""
    if text is None:
        try:
            text = read_text(path)  # bytes decoded by tools.core.yamlio: a bad byte is named by line and column
        except FileNotFoundError:
            spec = Spec(path, display, "")
            spec.findings.append(Finding(display, None, (), "no such file", "A"))
            return spec
        except YamlProblem as problem:
            spec = Spec(path, display, "")
            spec.findings.append(Finding(display, problem.line, (), problem.message, "A", rule="yaml"))
            return spec
        except OSError as error:  # a folder, no permission, a name too long
            spec = Spec(path, display, "")
            spec.findings.append(Finding(display, None, (), f"cannot read: {error.strerror or error}", "A"))
            return spec
    spec = Spec(path, display, text)
    try:
        spec.data = load_lined(text)
    except YamlProblem as problem:
        if not _unquoted_placeholders(spec):
            spec.findings.append(Finding(display, problem.line, problem.key_path, problem.message, "A", rule="yaml"))
        return spec
    if not isinstance(spec.data, dict):
        spec.findings.append(Finding(display, 1, (), "expected a mapping at the top level of a spec", "A"))
        spec.data = None
        return spec
    _resolve_kind(spec)
    if spec.kind is not None and spec.skipped is None:
        _placeholders(spec)
    return spec


def _resolve_kind(spec: Spec) -> None:
    """``spec.kind`` from the ``$schema`` line (or the content without one); layer A findings where they disagree."""
    data = spec.data
    url = data.get("$schema")
    if url is not None and not isinstance(url, str):
        spec.findings.append(spec.finding(("$schema",), "expected a URL string", "A", rule="schema-line"))
        url = None
    if url is None:
        spec.kind = infer_kind(data)
        if spec.kind and kinds()[spec.kind].get("published", True):
            spec.findings.append(spec.finding(
                ("$schema",), f"no $schema line: add `$schema: {schema_url(spec.kind)}` so editors check it as "
                f"you type (read as a {spec.kind} spec from its content)", "A", WARNING, "schema-line"))
    else:
        line = read_schema_line(url)
        if line.skip:
            spec.skipped = line.skip
            return
        if not line.kinds:
            spec.kind = infer_kind(data)
            known = f"; read as a {spec.kind} spec from its content" if spec.kind else ""
            spec.findings.append(spec.finding(
                ("$schema",), f"unknown schema URL {url!r}{known}", "A", WARNING if spec.kind else ERROR,
                "schema-line"))
        else:
            spec.kind = line.kinds[0] if len(line.kinds) == 1 else infer_kind(data, line.kinds)
            if not line.known_prefix:
                spec.findings.append(spec.finding(
                    ("$schema",), f"schema URL should be {schema_url(spec.kind)}", "A", WARNING, "schema-line"))
            other = mismatch(spec.kind, data)
            if other:
                # The SDK's loader dispatches on `type:`: under the same loader (`az ml` command) the content decides
                # and Azure accepts the file (a warning; B and C check the content's kind). Under another loader the
                # command the `$schema` names fails on the file: an error.
                same = other in kinds() and kinds()[other]["loader"] == kinds()[spec.kind]["loader"]
                expected = f" (expected $schema: {schema_url(other)})" if other in kinds() else ""
                spec.findings.append(spec.finding(
                    ("$schema",), f"$schema names {kinds()[spec.kind]['file']} but the content is a {other} spec"
                    f"{expected}", "A", WARNING if same else ERROR, "schema-line"))
                if same:
                    spec.kind = other
    if spec.kind is None:
        spec.findings.append(Finding(spec.display, 1, (), "cannot tell which Azure ML spec kind this is", "A"))


# Unfilled template placeholders: Jinja/mustache `{{NAME}}` (not Azure's `${{...}}` expressions) and the docs'
# `<SUBSCRIPTION_ID>` / `<subscription-id>` style. Free text (descriptions, tags) is not searched.
JINJA = re.compile(r"(?<![$\\{])\{\{\s*[^{}$]+?\s*\}\}")
ANGLE = re.compile(r"<[A-Z][A-Z0-9_]*[A-Z0-9]>|<[a-z][a-z0-9]*(?:-[a-z0-9]+)+>")
PROSE = {"description", "display_name", "tags", "properties"}  # free text: not searched at all
SHELL = {"command", "args"}  # shell text (`<` redirections): only `{{...}}` is searched


def _may_hold_placeholder(text: str) -> bool:
    """Whether any key or value of the file could match a placeholder pattern (see ``Spec.may_hold``; the
    patterns allow the whitespace that folding changes). One search of the text instead of a walk of every
    value, for the files that have none (most)."""
    return bool(("{{" in text and JINJA.search(text)) or ("<" in text and ANGLE.search(text))
                or ("\\" in text and ESCAPE.search(text)))


def _is_template_text(text: str) -> bool:
    """A value that is itself a template (a prompt pattern passed to a component: text with spaces around its
    ``{{field}}`` slots), not a spec field left unfilled (``{{asset.version}}``, ``{{image.name}}:{{tag}}``)."""
    return bool(re.search(r"\s", JINJA.sub("", text).strip()))


def _placeholders(spec: Spec) -> None:
    """One error naming the unfilled placeholders (the other layers would only cascade from them)."""
    if not _may_hold_placeholder(spec.text):
        return
    found: list[tuple[tuple, str]] = []

    def walk(node: Any, path: tuple, patterns: tuple[re.Pattern, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in PROSE:
                    continue
                if isinstance(key, str):  # a key left as a placeholder (`<EXTRA_KEY>: 1`)
                    found.extend(((*path, key), match.group(0)) for p in patterns for match in p.finditer(key))
                inner = patterns
                if key in SHELL:
                    inner = tuple(p for p in inner if p is not ANGLE)
                elif key == "inputs":  # input values are data for the component: `{{field}}` is its template
                    inner = tuple(p for p in inner if p is not JINJA)
                walk(value, (*path, key), inner)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index), patterns)
        elif isinstance(node, str) and not _is_template_text(node):
            for pattern in patterns:
                found.extend((path, match.group(0)) for match in pattern.finditer(node))

    walk(spec.data, (), (JINJA, ANGLE))
    if found:
        names = ", ".join(dict.fromkeys(name for _, name in found))
        spec.placeholders = [name for _, name in found]
        spec.findings.append(spec.finding(
            found[0][0], f"unfilled template placeholder {names}: render the template (or fill it in) first; "
            "other checks skipped", "A", rule="placeholder"))


def _unquoted_placeholders(spec: Spec) -> bool:
    """A file YAML cannot read because a placeholder was left unquoted (``name: {{ENDPOINT_NAME}}`` is a flow
    mapping whose key is a mapping): one placeholder error naming them, at the first one's line, not the YAML
    error it causes. Comment lines are not searched."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(spec.text.splitlines(), 1):
        if not line.lstrip().startswith("#"):
            found.extend((number, match.group(0)) for match in JINJA.finditer(line))
    if not found:
        return False
    spec.placeholders = [name for _, name in found]
    names = ", ".join(dict.fromkeys(spec.placeholders))
    spec.findings.append(Finding(spec.display, found[0][0], (), f"unfilled template placeholder {names}: render the "
                                 "template (or fill it in) first; other checks skipped", "A", rule="placeholder"))
    return True


def spec_from_dict(data: dict[str, Any], kind: str | None = None, path: Path | str = "spec.yml") -> Spec:
    """A Spec from a literal dict (for rule tests): dumped to YAML and parsed, so key paths have lines; ``kind``
    overrides what the content and its ``$schema`` say."""
    spec = parse_spec(Path(path), str(path), yaml.safe_dump(data, sort_keys=False))
    if kind is not None:
        spec.kind = kind
    return spec
