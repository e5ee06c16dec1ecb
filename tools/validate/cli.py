"""`python -m tools validate`: prove specs valid offline, in layers (tools.validate.layers), with one line per finding,
a status per file (valid, invalid, skipped with the reason) and a summary line, as kubeconform prints them.

Explicit paths validate any spec file (a folder stands for the YAML specs below it); `--workspace NAME` validates
that workspace's render and `--all` (the default) every workspace's, rendered once in memory (a non-default
workspace's build/<name>/ tree, which `az ml -f` reads, is brought up to date first).

Exit codes: 0 no errors; 1 errors found (or warnings under --strict); 2 could not run (bad arguments, no spec
in a folder); 3 internal failure: the validator failed on at least one file (that file's finding says so, marked
`internal`; the other files were still checked).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tools.core.errors import UserError
from tools.core.files import atomic_write_text
from tools.core.repo import is_spec_text
from tools.core.text import counted
from tools.render.engine import RenderedWorkspace, render
from tools.render.values import workspace_names
from tools.validate.document import Spec, parse_spec
from tools.validate.findings import ERROR, INTERNAL, promote_warnings, to_github, to_json, to_junit, to_sarif, to_text
from tools.validate.layers import ALL_LAYERS, Report, statuses_of, validate_specs
from tools.validate.rule_ids import layer_defaults, rule_table
from tools.validate.rules.files import relative_display
from tools.validate.runner import Runner

__all__ = ["Report", "validate_specs", "validate_workspace", "spec_paths_of_workspace", "expand_paths"]
EXIT_ERRORS, EXIT_INTERNAL = 1, 3
SPEC_SUFFIXES = (".yml", ".yaml")


def _runner(jobs: int | None, cache: bool) -> object:
    return Runner(jobs=jobs, cache=cache)


def rendered_specs(workspace: str, root: Path | None = None,
                   rendered: RenderedWorkspace | None = None) -> tuple[list[Spec], str]:  # fmt: skip
    """A workspace's rendered specs (``RenderedWorkspace.spec_files``), parsed from the in-memory render, and its
    policy.

    The default workspace's render is the committed tree (`render --check` keeps it equal); any other
    workspace's render is a build output under build/<name>/ that `az ml -f` and the loaders read: the SDK and
    the file rules resolve `code:`, `conda_file:` and `component:` relative to the spec, and POSIX resolves `..`
    only through folders that exist. So render's own writer brings that tree up to date first (atomically, only
    what differs); the validation itself reads the in-memory texts and writes nothing.
    """
    rendered = rendered if rendered is not None else render(workspace, root)  # a caller's render is reused
    if rendered.out_dir != rendered.root:
        rendered.write()
    specs = [parse_spec(path, relative_display(path, rendered.root), item.text)
             for item in rendered.spec_files() for path in [rendered.path_of(item)]]  # fmt: skip
    return specs, str(rendered.values.data.get("policy", "default"))


def spec_paths_of_workspace(workspace: str, root: Path | None = None) -> list[tuple[Path, str]]:
    """The rendered spec files of a workspace: (intended path, display) pairs."""
    return [(spec.path, spec.display) for spec in rendered_specs(workspace, root)[0]]


def validate_workspace(workspace: str, layers: str = ALL_LAYERS, root: Path | None = None,
                       runner: object | None = None) -> Report:  # fmt: skip
    """A rendered workspace's specs, validated with its values' policy; its values declare every cluster, so a job
    naming another one is an error there (outside a workspace, a warning)."""
    specs, policy = rendered_specs(workspace, root)
    return validate_specs(specs, layers, policy, runner, workspace=workspace)


NOT_A_SPEC = "no $schema and no type of an az ml kind"


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given; a folder stands for the YAML specs below it (``Repo.is_spec_text``)."""
    expanded: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = []
            for p in sorted(path.rglob("*")):
                if p.suffix in SPEC_SUFFIXES and p.is_file():
                    try:
                        head = p.read_text(errors="ignore")
                    except OSError:
                        head = "$schema:"  # unreadable: let parse_spec report it
                    if is_spec_text(head):
                        found.append(p)
            if not found:
                raise UserError(f"{name}: no YAML spec with a $schema line below this folder")
            expanded.extend(found)
        else:
            expanded.append(path)
    return expanded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="spec files (or folders of them) to validate: any spec, rendered by us or not")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--workspace", metavar="NAME", help="validate one workspace's rendered specs")
    scope.add_argument("--all", action="store_true", help="validate every workspace (the default without PATHs)")
    parser.add_argument("--format", choices=("text", "json", "junit", "github", "sarif"), default="text",
                        help="output format (sarif: GitHub code scanning)")
    parser.add_argument("--output", metavar="FILE", type=Path, help="write the report to FILE instead of stdout")
    parser.add_argument("--strict", action="store_true", help="warnings count as errors")
    parser.add_argument("--layers", default=ALL_LAYERS, help="subset of layers to run, e.g. ACD (default ABCD)")
    parser.add_argument("--policy", choices=("default", "prod"), default="default",
                        help="policy for explicit PATHs (workspaces use their values' `policy`)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="worker processes for layer B (default: the CPU count; 1: in this process)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write build/cache/validate/")
    parser.add_argument("--quiet", action="store_true", help="text format: no status line for valid files")
    parser.add_argument("--specs-only", action="store_true",
                        help="explicit files that are not Azure ML specs (no $schema line, no spec type:) are "
                             "skipped instead of reported (for pre-commit, which passes every staged YAML file)")


def run(args: argparse.Namespace) -> int:
    layers = "".join(sorted(set(args.layers.upper())))
    if not layers or set(layers) - set(ALL_LAYERS):
        raise UserError(f"--layers {args.layers!r}: expected letters from {ALL_LAYERS}")
    if args.paths and (args.workspace or args.all):
        raise UserError("give PATHs or --workspace/--all, not both")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: expected 1 or more")
    runner = _runner(args.jobs, cache=not args.no_cache and not os.environ.get("TOOLS_VALIDATE_NO_CACHE"))
    reports: list[tuple[str, Report]] = []
    if args.paths:
        paths = expand_paths(args.paths)
        skipped = []
        if args.specs_only:  # the others are listed as skipped, with the reason (never dropped silently)
            skipped = [p for p in paths if p.is_file() and not is_spec_text(p.read_text(errors="ignore"))]
            paths = [p for p in paths if p not in skipped]
        specs = [parse_spec(path, str(path)) for path in paths]
        specs += [Spec(path, str(path), "", skipped=NOT_A_SPEC) for path in skipped]
        reports.append(("paths", validate_specs(specs, layers, args.policy, runner)))
    else:
        for name in [args.workspace] if args.workspace else workspace_names():
            reports.append((name, validate_workspace(name, layers, runner=runner)))
    findings = [f for _, report in reports for f in report.findings]
    if args.strict:
        findings = promote_warnings(findings)
    specs = [spec for _, report in reports for spec in report.specs]
    statuses = statuses_of(specs, findings)
    files = [spec.display for spec in specs]
    if args.format == "json":
        output = to_json(findings, files, [s.as_dict() for s in statuses])
    elif args.format == "junit":
        output = to_junit(findings, files)
    elif args.format == "github":
        output = to_github(findings)
    elif args.format == "sarif":
        output = to_sarif(findings, rule_table(), layer_defaults())
    else:
        lines = [to_text(findings)] if findings else []
        lines += [s.text() for s in statuses if not (args.quiet and s.status == "valid")]
        output = "\n".join(lines)
    if args.output:
        atomic_write_text(args.output, output + "\n")
    elif output:
        print(output)
    errors = sum(f.severity == ERROR for f in findings)
    internal = sum(f.rule == INTERNAL for f in findings)
    count = {status: sum(s.status == status for s in statuses) for status in ("valid", "invalid", "skipped")}
    scope = ", ".join(f"{name}: {len(report.specs)}" for name, report in reports)
    print(f"Summary: {counted(len(files), 'file')} ({scope}) - Valid: {count['valid']}, Invalid: {count['invalid']}, "
          f"Skipped: {count['skipped']}; {counted(errors, 'error')}, {counted(len(findings) - errors, 'warning')}, "
          f"{internal} internal "
          f"[layers {layers}]", file=sys.stderr)  # fmt: skip
    if internal:
        return EXIT_INTERNAL
    return EXIT_ERRORS if errors else 0
