"""Validation findings and their five renderings: one text line each, JSON, JUnit XML, SARIF 2.1.0 and GitHub
Actions annotations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from tools.core.yamlio import KeyPath, format_key_path

ERROR = "error"
WARNING = "warning"
NOTE = "note"  # information, never an error (not even under --strict)
INTERNAL = "internal"  # the rule of a finding that reports the validator's own failure on a file
LAYERS = {"A": "YAML hygiene", "B": "azure-ai-ml loaders", "C": "JSON schemas", "D": "repo rules"}
MAX_ECHO = 80  # an echoed value, path or key longer than this is cut, with an ellipsis
MAX_MESSAGE = 600
_LONG_WORD = re.compile(rf"\S{{{MAX_ECHO + 1},}}")


def bounded(text: str) -> str:
    """``text`` with every run of non-blank characters over MAX_ECHO cut to MAX_ECHO (its start and an ellipsis),
    and the whole at most MAX_MESSAGE: a finding never echoes a 100k-character value on one line."""
    text = _LONG_WORD.sub(lambda m: m.group(0)[: MAX_ECHO - 3] + "...", text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


@dataclass(frozen=True)
class Finding:
    """One problem in one file: ``path:line: key.path: message``."""

    path: str
    line: int | None
    key_path: KeyPath
    message: str
    layer: str  # A, B, C or D
    severity: str = ERROR
    rule: str = ""

    def __post_init__(self) -> None:
        if len(self.message) > MAX_ECHO:
            object.__setattr__(self, "message", bounded(self.message))

    @property
    def key(self) -> str:
        return bounded(format_key_path(self.key_path))

    def text(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        key = f" {self.key}:" if self.key else ""
        level = f" {self.severity}:" if self.severity in (WARNING, NOTE) else ""
        return f"{where}:{key}{level} {self.message}"

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["key_path"] = self.key
        return data


def promote_warnings(findings: Iterable[Finding]) -> list[Finding]:
    """--strict: every warning counts as an error."""
    return [
        Finding(f.path, f.line, f.key_path, f.message, f.layer, ERROR, f.rule) if f.severity == WARNING else f
        for f in findings
    ]


MAX_PER_FILE = 200  # text lines of findings shown per file; the rest is one "and N more" line (JSON lists all)


def to_text(findings: list[Finding], per_file: int | None = MAX_PER_FILE) -> str:
    """One line per finding, at most ``per_file`` per file, then one line saying how many more that file has: a spec
    with 20,000 unknown keys is a screenful, not 20,000 lines (the counts and the JSON/SARIF reports keep all)."""
    shown: dict[str, int] = {}
    more_at: dict[str, int] = {}  # file -> index of its "and N more" line (where its (per_file + 1)th would be)
    lines: list[str] = []
    for finding in findings:
        count = shown[finding.path] = shown.get(finding.path, 0) + 1
        if per_file is None or count <= per_file:
            lines.append(finding.text())
        elif count == per_file + 1:
            more_at[finding.path] = len(lines)
            lines.append("")
    for path, index in more_at.items():
        lines[index] = (f"{path}: and {shown[path] - per_file} more findings in this file (the first {per_file} are "  # type: ignore[operator]
                        "shown; --format json lists every one)")  # fmt: skip
    return "\n".join(lines)


def to_json(findings: list[Finding], files: list[str], statuses: list[dict] | None = None) -> str:
    errors = sum(f.severity == ERROR for f in findings)
    report: dict[str, object] = {"files": files, "errors": errors, "warnings": len(findings) - errors,
                                 "findings": [f.as_dict() for f in findings]}  # fmt: skip
    if statuses is not None:
        report["statuses"] = statuses
        report["summary"] = {s: sum(x["status"] == s for x in statuses) for s in ("valid", "invalid", "skipped")}
    return json.dumps(report, indent=2)


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_sarif(findings: list[Finding], rules: Mapping[str, Any], defaults: Mapping[str, str]) -> str:
    """SARIF 2.1.0 for GitHub code scanning: one rule per id that occurs (its summary and helpUri from ``rules``,
    schemas/rules.yaml; a finding with no id takes its layer's from ``defaults``), one result per finding (its file,
    line and key path). https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html"""
    descriptors: dict[str, dict[str, object]] = {}
    results = []
    for f in findings:
        rule_id = f.rule or defaults.get(f.layer, "")
        if rule_id not in descriptors:
            rule = rules.get(rule_id)
            descriptor: dict[str, object] = {"id": rule_id, "name": rule_id,
                                             "properties": {"layer": f.layer, "layerName": LAYERS[f.layer]}}
            if rule is not None:
                descriptor["shortDescription"] = {"text": rule.summary}
                descriptor["helpUri"] = rule.help
            descriptors[rule_id] = descriptor
        location: dict[str, object] = {"artifactLocation": {"uri": f.path.lstrip("/") if not f.path.startswith("/")
                                                            else f.path}}
        if f.line:
            location["region"] = {"startLine": f.line}
        results.append({"ruleId": rule_id,
                        "level": {ERROR: "error", WARNING: "warning"}.get(f.severity, "note"),
                        "message": {"text": f"{f.key}: {f.message}" if f.key else f.message},
                        "locations": [{"physicalLocation": location}]})  # fmt: skip
    run = {"tool": {"driver": {"name": "azureml-validate", "rules": list(descriptors.values())}}, "results": results}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)


def to_junit(findings: list[Finding], files: list[str]) -> str:
    """One test case per file and layer; each error is a failure (warnings go to system-out)."""
    cases: list[str] = []
    failures = 0
    for path in files:
        for layer, layer_name in LAYERS.items():
            mine = [f for f in findings if f.path == path and f.layer == layer]
            errors = [f for f in mine if f.severity == ERROR]
            warnings = [f for f in mine if f.severity == WARNING]
            body = ""
            if errors:
                failures += 1
                text = "\n".join(f.text() for f in errors)
                body += f'<failure message={quoteattr(errors[0].text())} type="{layer_name}">{_escape(text)}</failure>'
            if warnings:
                body += f"<system-out>{_escape(chr(10).join(f.text() for f in warnings))}</system-out>"
            cases.append(
                f"  <testcase classname={quoteattr(path)} name={quoteattr(f'{layer} {layer_name}')}>{body}</testcase>"
            )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<testsuite name="azureml-specs" tests="{len(cases)}" failures="{failures}" errors="0">\n'
        + "\n".join(cases)
        + "\n</testsuite>\n"
    )


def to_github(findings: list[Finding]) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on its file and line."""

    def prop(text: str) -> str:
        return (
            text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C")
        )

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    lines = []
    for f in findings:
        line = f",line={f.line}" if f.line else ""
        title = f"{LAYERS[f.layer]}: {f.key}" if f.key else LAYERS[f.layer]
        level = "notice" if f.severity == NOTE else f.severity
        lines.append(f"::{level} file={prop(f.path)}{line},title={prop(title)}::{data(f.message)}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
