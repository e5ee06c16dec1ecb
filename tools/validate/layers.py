"""The validator's core: parsed specs in, findings and a status per file out. It knows nothing about rendering and
writes nothing (the SDK only reads the local files a spec references; the result cache is the caller's choice).

A  YAML hygiene     parses, no duplicate keys, the kind is known (tools.validate.kind), no unfilled placeholder
B  azure-ai-ml      the pinned SDK's loaders (what `az ml` runs) plus `_validate()`; unknown-field warnings are errors
C  JSON schemas     schemas/azureml/*.json, exported from that same SDK
D  repo rules       tools.validate.rules

A spec whose check fails inside the validator (a bug, or an SDK crash on odd input) gets one finding marked
``internal`` and the run goes on with the next spec.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.core.repo import kinds
from tools.core.text import counted
from tools.validate.casing import to_sdk_spelling
from tools.validate.document import Spec
from tools.validate.findings import ERROR, INTERNAL, WARNING, Finding
from tools.validate.rules.concerns import check_spec
from tools.validate.rules.support import RuleContext
from tools.validate.schema import validate_against_schema
from tools.validate.sdk import check_with_sdk

ALL_LAYERS = "ABCD"
LAYER_ORDER = "ACDB"  # which layer's message wins when two report the same key (B's are the most verbose)
VALID, INVALID, SKIPPED = "valid", "invalid", "skipped"


@dataclass(frozen=True)
class FileStatus:
    """One file's verdict, as kubeconform prints it: valid, invalid, or skipped with the reason."""

    path: str
    status: str
    kind: str | None = None
    reason: str = ""
    errors: int = 0
    warnings: int = 0

    def text(self) -> str:
        if self.status == SKIPPED:
            return f"{self.path} - skipped: {self.reason}"
        counts = f", {counted(self.errors, 'error')}" if self.errors else ""
        counts += f", {counted(self.warnings, 'warning')}" if self.warnings else ""
        return f"{self.path} - {self.kind or 'unknown kind'} is {self.status}{counts}"

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "status": self.status, "kind": self.kind, "reason": self.reason,
                "errors": self.errors, "warnings": self.warnings}  # fmt: skip


@dataclass
class Report:
    specs: list[Spec]
    findings: list[Finding]
    statuses: list[FileStatus] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(f.severity == ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    @property
    def internal(self) -> int:
        return sum(f.rule == INTERNAL for f in self.findings)


def statuses_of(specs: list[Spec], findings: list[Finding]) -> list[FileStatus]:
    by_file: dict[str, list[Finding]] = {}
    for finding in findings:
        by_file.setdefault(finding.path, []).append(finding)
    out = []
    for spec in specs:
        mine = by_file.get(spec.display, [])
        errors = sum(f.severity == ERROR for f in mine)
        if spec.skipped and not errors:
            out.append(FileStatus(spec.display, SKIPPED, None, spec.skipped))
        else:
            out.append(FileStatus(spec.display, INVALID if errors else VALID, spec.kind, "", errors,
                                  len(mine) - errors))  # fmt: skip
    return out


def checkable(spec: Spec) -> bool:
    """Layers B, C and D run on a spec of a known kind that is not skipped and has no unfilled placeholder."""
    return spec.data is not None and spec.kind is not None and not spec.skipped and not spec.placeholders


def _internal(spec: Spec, layer: str, error: BaseException) -> Finding:
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return Finding(spec.display, None, (), f"internal error in layer {layer}: {type(error).__name__}: {error}{at}; "
                   "this file's check is incomplete", layer, ERROR, INTERNAL)  # fmt: skip


def layer_c(spec: Spec) -> list[Finding]:
    try:
        def respelled(data: object) -> object:  # enums as the SDK compares them (chat_completion)
            return to_sdk_spelling(spec.kind, data)

        issues = validate_against_schema(spec.kind, spec.data, prepare=respelled)
        return [spec.finding(tuple(i.key_path), i.message, "C") for i in issues]
    except Exception as error:  # noqa: BLE001 - one file's failure is that file's finding; the run goes on
        return [_internal(spec, "C", error)]


def layer_b(spec: Spec) -> list[Finding]:
    try:
        return [spec.finding(tuple(i.key_path), i.message, "B") for i in check_with_sdk(spec.kind, spec.text,
                                                                                        spec.path)]
    except Exception as error:  # noqa: BLE001
        return [_internal(spec, "B", error)]


def layer_d(spec: Spec, context: RuleContext) -> list[Finding]:
    try:
        return check_spec(spec, context)
    except Exception as error:  # noqa: BLE001
        return [_internal(spec, "D", error)]


def _related_to(findings: list[Finding]) -> Callable[[tuple], bool]:
    """A test of whether a key path is related to any of ``findings``' key paths (one is a prefix of the other), in
    time linear in the paths' depth: comparing every pair was quadratic (20,000 unknown keys: minutes)."""
    paths = {tuple(f.key_path) for f in findings}
    prefixes = {path[:n] for path in paths for n in range(len(path) + 1)}

    def related(key_path: tuple) -> bool:
        key_path = tuple(key_path)
        return key_path in prefixes or any(key_path[:n] in paths for n in range(len(key_path)))

    return related


def reconcile(spec: Spec, c: list[Finding], b: list[Finding] | None) -> list[Finding]:
    """Layer C's findings, reconciled with the SDK's (``b``; None when layer B did not run).

    The exported schemas are stricter than azure-ai-ml in places (unions of AutoML search spaces, pipeline
    component input types, control-flow nodes, enums the SDK compares case-insensitively, ``${{...}}``
    expressions where a number or an enum is declared): the SDK is what ``az ml`` runs, so where it loads a
    key clean, C's objection is dropped. Two exceptions: an unknown key the SDK silently ignores stays an error
    when it is a near-miss of a known key (a typo such as ``settings.default_datestore``: the intended setting
    never reaches Azure), and is a warning otherwise (azure-ai-ml drops it before the request); and a structural
    mismatch (a list or mapping where a scalar belongs, or the reverse) stays, since the SDK passes some of those
    to the service unchecked (``version: [1]``). Without layer
    B, C stands alone, less only its objections to ``${{...}}`` expressions (resolved by Azure at run time; a
    near-miss key holding one is still a typo)."""
    out: list[Finding] = []
    related = _related_to(b or [])
    for finding in c:
        value = _value_at(spec.data, finding.key_path)
        if isinstance(value, str) and "${{" in value and "did you mean" not in finding.message:
            continue  # Azure resolves the expression at run time; a misspelt key stays misspelt whatever its value
        if b is None or related(finding.key_path) or _structural(finding):
            out.append(finding)
        elif finding.message.startswith("unknown key"):
            if "did you mean" in finding.message:
                out.append(finding)
            else:
                out.append(Finding(finding.path, finding.line, finding.key_path,
                                   f"{finding.message}: azure-ai-ml ignores it (not sent to Azure)", "C", WARNING,
                                   "ignored-key"))  # fmt: skip
    return out


_SHAPE = re.compile(r"^expected (.+), got (\w+)")


def _structural(finding: Finding) -> bool:
    match = _SHAPE.match(finding.message)
    if not match or finding.message.startswith("expected one of"):
        return False
    shapes = {"object", "array"}
    return bool(shapes & set(match.group(1).split(" or "))) != (match.group(2) in shapes) or match.group(2) in shapes


def _value_at(data: object, key_path: tuple) -> object:
    for part in key_path:
        found = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data))
        if not found:
            return None
        data = data[part]  # type: ignore[index]
    return data


_MISSING = re.compile(r"^missing required key '?([A-Za-z_]+)'?")


def cli_given(spec: Spec, findings: list[Finding]) -> list[Finding]:
    """A required field that ``az`` takes on the command line (kinds.yaml ``cli_fields``: ``name`` via ``--name``,
    ``endpoint_name`` via ``--endpoint-name``) is a warning naming the flag, not an error: the CLI fills it in
    before the SDK validates (``az ml online-deployment create -f d.yml --name blue --endpoint-name e``)."""
    flags = (kinds().get(spec.kind or "") or {}).get("cli_fields") or {}
    out = []
    for finding in findings:
        match = _MISSING.match(finding.message)
        field_name = match.group(1) if match else None
        if finding.severity == ERROR and field_name in flags and finding.key_path in ((field_name,), ()):
            az = kinds()[spec.kind]["az"]
            finding = Finding(finding.path, finding.line, (field_name,), f"no `{field_name}` in the file: give it "
                              f"on the command line (`{az} -f ... {flags[field_name]} <value>`)", finding.layer,
                              WARNING, "cli-field")  # fmt: skip
        out.append(finding)
    return out


def layer_findings(spec: Spec, layers: str, context: RuleContext | None = None) -> list[Finding]:
    """Layers C, B (and D with a context) on one checkable spec; an exception becomes one internal finding."""
    b = cli_given(spec, layer_b(spec)) if "B" in layers else None
    findings = cli_given(spec, reconcile(spec, layer_c(spec), b)) if "C" in layers else []
    findings += b or []
    if "D" in layers and context is not None:
        findings += layer_d(spec, context)
    return findings


def validate_specs(specs: list[Spec], layers: str = ALL_LAYERS, policy: str = "default",
                   runner: object | None = None, workspace: str | None = None) -> Report:  # fmt: skip
    """Run the layers over parsed specs. ``runner(specs, layers, context)`` may compute the per-spec findings
    (in parallel, from a cache); by default they are computed here, one spec after another. ``workspace``: the
    rendered workspace these specs are (its values declare every cluster), None for specs from anywhere."""
    context = RuleContext(specs, policy=policy, workspace=workspace)
    findings: list[Finding] = [f for spec in specs for f in spec.findings]  # layer A, from parsing
    todo = [spec for spec in specs if checkable(spec)]
    if runner is not None:
        findings.extend(runner(todo, layers, context))  # type: ignore[operator]
    else:
        for spec in todo:
            findings.extend(layer_findings(spec, layers, context if "D" in layers else None))
    kept = dedupe(findings)
    return Report(specs, kept, statuses_of(specs, kept))


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per file, key path and severity, from the first layer in LAYER_ORDER that reports it; the repo
    rules (D) may add their own distinct messages on a key another layer reported. Sorted by file and line."""
    kept: list[Finding] = []
    claimed: set[tuple] = set()
    for finding in sorted(findings, key=lambda f: LAYER_ORDER.index(f.layer)):
        where = (finding.path, finding.key_path, finding.severity)
        if where in claimed and (finding.layer != "D" or (*where, finding.message) in claimed):
            continue
        claimed.update({where, (*where, finding.message)})
        kept.append(finding)
    return sorted(kept, key=lambda f: (f.path, f.line or 0))
