"""A spec file as the validator sees it, and layer A (YAML hygiene): it parses, has no duplicate keys, and its
`$schema` line names the kind its content is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.core.repo import kinds, kinds_table, schema_url
from tools.core.yamlio import YamlProblem, line_of, load_lined, read_text
from tools.validate.findings import Finding

# Kinds that one content shape can legitimately be (the `$schema` line decides between them).
_AMBIGUOUS = {frozenset({"commandJob", "commandComponent"})}
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

    def line(self, key_path: tuple) -> int | None:
        return line_of(self.data, key_path) if self.data is not None else None

    def finding(self, key_path: tuple, message: str, layer: str, severity: str = "error", rule: str = "") -> Finding:
        return Finding(self.display, self.line(key_path), tuple(key_path), message, layer, severity, rule)


def kind_from_schema_url(url: str) -> str | None:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    for kind, facts in kinds().items():
        if facts["file"] == name:
            return kind
    return None


def infer_kind(data: dict[str, Any]) -> str | None:
    """The kind a spec's content looks like, independent of its `$schema` line."""
    spec_type = data.get("type")
    if "endpoint_name" in data:
        return "managedOnlineDeployment"
    if "auth_mode" in data or "traffic" in data:
        return "managedOnlineEndpoint"
    if spec_type == "amlcompute":
        return "amlCompute"
    if spec_type == "pipeline" or "jobs" in data:
        return "pipelineJob"
    if spec_type == "command" or "command" in data:
        return "commandJob" if "compute" in data or "environment_variables" in data else "commandComponent"
    if spec_type in MODEL_TYPES:
        return "model"
    if spec_type in DATA_TYPES:
        return "data"
    if any(key in data for key in ("image", "conda_file", "build")):
        return "environment"
    return None


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
        spec.findings.append(Finding(display, problem.line, problem.key_path, problem.message, "A", rule="yaml"))
        return spec
    if not isinstance(spec.data, dict):
        spec.findings.append(Finding(display, 1, (), "expected a mapping at the top level of a spec", "A"))
        spec.data = None
        return spec
    inferred = infer_kind(spec.data)
    url = spec.data.get("$schema")
    declared = kind_from_schema_url(url) if isinstance(url, str) else None
    base = kinds_table()["schema_base_url"]
    if url is None:
        expected = f" (expected $schema: {schema_url(inferred)})" if inferred else ""
        spec.findings.append(spec.finding(("$schema",), f"missing $schema line{expected}", "A", rule="schema-line"))
        spec.kind = inferred
    elif declared is None:
        known = ", ".join(facts["file"] for facts in kinds().values())
        spec.findings.append(
            spec.finding(
                ("$schema",), f"unknown schema URL {url!r} (expected {base}<one of {known}>)", "A", rule="schema-line"
            )
        )
        spec.kind = inferred
    else:
        spec.kind = declared
        if not url.startswith(base):
            spec.findings.append(
                spec.finding(("$schema",), f"schema URL should be {schema_url(declared)}", "A", rule="schema-line")
            )
        if inferred and inferred != declared and frozenset({inferred, declared}) not in _AMBIGUOUS:
            spec.findings.append(
                spec.finding(
                    ("$schema",),
                    f"$schema names {kinds()[declared]['file']} but the content is a {inferred} spec "
                    f"(expected $schema: {schema_url(inferred)})",
                    "A",
                    rule="schema-line",
                )
            )
    if spec.kind is None:
        spec.findings.append(Finding(display, 1, (), "cannot tell which Azure ML spec kind this is", "A"))
    return spec


def spec_from_dict(data: dict[str, Any], kind: str | None = None, path: Path | str = "spec.yml") -> Spec:
    """A Spec from a literal dict (for rule tests): dumped to YAML and parsed, so key paths have lines; ``kind``
    overrides what the content and its ``$schema`` say."""
    import yaml

    spec = parse_spec(Path(path), str(path), yaml.safe_dump(data, sort_keys=False))
    if kind is not None:
        spec.kind = kind
    return spec
