"""`python -m tools validate`: prove specs valid offline, in layers, with one line per finding.

A  YAML hygiene     parses, no duplicate keys, `$schema` names the spec's kind
B  azure-ai-ml      the pinned SDK's loaders (what `az ml` runs) plus `_validate()`; unknown-field warnings are errors
C  JSON schemas     schemas/azureml/*.json, exported from that same SDK
D  repo rules       bindings, registry component contracts, URIs, SKU allow-lists, names, ranges, files, policies

Explicit paths validate any spec file; `--workspace NAME` validates that workspace's render (other workspaces are
rendered into build/<name>/ first); `--all` (the default) validates every workspace. Exit 0 only without errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tools.core.errors import UserError
from tools.core.repo import REPO_ROOT
from tools.core.yamlio import plain
from tools.render.engine import default_out_dir, render_workspace, write_rendered
from tools.render.values import DEFAULT_WORKSPACE, load_values, workspace_names
from tools.validate.document import Spec, parse_spec
from tools.validate.findings import ERROR, Finding, promote_warnings, to_github, to_json, to_junit, to_text
from tools.validate.rules import RuleContext, check_specs
from tools.validate.rules.files import relative_display

ALL_LAYERS = "ABCD"
LAYER_ORDER = "ACDB"  # which layer's message wins when two report the same key (B's are the most verbose)


@dataclass
class Report:
    specs: list[Spec]
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return sum(f.severity == ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors


def _issues_to_findings(spec: Spec, issues: Iterable[object], layer: str) -> list[Finding]:
    return [spec.finding(tuple(issue.key_path), issue.message, layer) for issue in issues]  # type: ignore[attr-defined]


def validate_specs(specs: list[Spec], layers: str = ALL_LAYERS, policy: str = "default") -> Report:
    """Run the layers over parsed specs (pure apart from the SDK's reading of referenced local files)."""
    findings: list[Finding] = []
    for spec in specs:
        findings.extend(spec.findings)  # layer A, from parsing
        if spec.data is None or spec.kind is None:
            continue
        if "C" in layers:
            from tools.validate.schema import validate_against_schema

            findings.extend(_issues_to_findings(spec, validate_against_schema(spec.kind, plain(spec.data)), "C"))
        if "B" in layers:
            from tools.validate.sdk import check_with_sdk

            findings.extend(_issues_to_findings(spec, check_with_sdk(spec.kind, spec.text, spec.path), "B"))
    if "D" in layers:
        findings.extend(check_specs(RuleContext(specs, policy=policy)))
    return Report(specs, _dedupe(findings))


def _dedupe(findings: list[Finding]) -> list[Finding]:
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


def spec_paths_of_workspace(workspace: str, root: Path = REPO_ROOT) -> list[tuple[Path, str]]:
    """The rendered spec files of a workspace (rendering non-default workspaces into build/<name>/ first)."""
    out_dir = default_out_dir(workspace, root)
    files = render_workspace(workspace, out_dir, root)
    if workspace != DEFAULT_WORKSPACE:
        write_rendered(files, out_dir)
    specs = [f for f in files if f.template.endswith(".j2") and f.relpath.endswith((".yml", ".yaml"))]
    return [(out_dir / f.relpath, relative_display(out_dir / f.relpath, root)) for f in specs]


def validate_workspace(workspace: str, layers: str = ALL_LAYERS, root: Path = REPO_ROOT) -> Report:
    policy = load_values(workspace, root).data.get("policy", "default")
    specs = [parse_spec(path, display) for path, display in spec_paths_of_workspace(workspace, root)]
    return validate_specs(specs, layers, policy)


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given; a folder stands for the YAML files below it that carry a `$schema` line."""
    expanded: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".yml", ".yaml") and "$schema:" in p.read_text(errors="ignore")
            )
            if not found:
                raise UserError(f"{name}: no YAML spec with a $schema line below this folder")
            expanded.extend(found)
        else:
            expanded.append(path)
    return expanded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="spec files (or folders of them) to validate: any spec, rendered by us or not",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--workspace", metavar="NAME", help="validate one workspace's rendered specs")
    scope.add_argument("--all", action="store_true", help="validate every workspace (the default without PATHs)")
    parser.add_argument("--format", choices=("text", "json", "junit", "github"), default="text", help="output format")
    parser.add_argument("--output", metavar="FILE", type=Path, help="write the report to FILE instead of stdout")
    parser.add_argument("--strict", action="store_true", help="warnings count as errors")
    parser.add_argument("--layers", default=ALL_LAYERS, help="subset of layers to run, e.g. ACD (default ABCD)")
    parser.add_argument(
        "--policy",
        choices=("default", "prod"),
        default="default",
        help="policy for explicit PATHs (workspaces use their values' `policy`)",
    )


def run(args: argparse.Namespace) -> int:
    layers = "".join(sorted(set(args.layers.upper())))
    if not layers or set(layers) - set(ALL_LAYERS):
        raise UserError(f"--layers {args.layers!r}: expected letters from {ALL_LAYERS}")
    if args.paths and (args.workspace or args.all):
        raise UserError("give PATHs or --workspace/--all, not both")
    reports: list[tuple[str, Report]] = []
    if args.paths:
        specs = [parse_spec(path, str(path)) for path in expand_paths(args.paths)]
        reports.append(("paths", validate_specs(specs, layers, args.policy)))
    else:
        for name in [args.workspace] if args.workspace else workspace_names():
            reports.append((name, validate_workspace(name, layers)))
    findings = [f for _, report in reports for f in report.findings]
    if args.strict:
        findings = promote_warnings(findings)
    files = [spec.display for _, report in reports for spec in report.specs]
    if args.format == "json":
        output = to_json(findings, files)
    elif args.format == "junit":
        output = to_junit(findings, files)
    elif args.format == "github":
        output = to_github(findings)
    else:
        output = to_text(findings)
    if args.output:
        from tools.core.files import atomic_write_text

        atomic_write_text(args.output, output + "\n")
    elif output:
        print(output)
    errors = sum(f.severity == ERROR for f in findings)
    warnings = len(findings) - errors
    scope = ", ".join(f"{name} ({len(report.specs)})" for name, report in reports)
    print(f"validate [{layers}]: {len(files)} specs: {scope}: {errors} errors, {warnings} warnings", file=sys.stderr)
    return 1 if errors else 0
