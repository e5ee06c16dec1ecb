"""`python -m tools render`: workspace values → Jinja templates (StrictUndefined) → Azure ML specs.

templates/ mirrors the output tree: `templates/jobs/finetune.yml.j2` renders to `jobs/finetune.yml`; files without
`.j2` are copied as they are. The default workspace renders into the repo's top-level folders (committed), every
other workspace into `build/<name>/`. Output is deterministic byte for byte; `--check` compares instead of writing.
"""

from __future__ import annotations

import argparse
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tools.core.errors import UserError
from tools.core.files import atomic_write_text
from tools.core.repo import Repo, active
from tools.core.text import counted
from tools.render.derived import build_context, yaml_scalar
from tools.render.values import DEFAULT_WORKSPACE, Values, load_values, workspace_names

TEMPLATES_DIR = "templates"  # as messages show it (paths: Repo.templates_dir)
TEMPLATE_SUFFIX = ".j2"
HEADER = (
    "# Rendered by `python -m tools render` from {template} with workspaces/{workspace}.yaml: edit those, not this.\n"
)


@dataclass(frozen=True)
class RenderedFile:
    relpath: str  # relative to the output root, POSIX separators
    template: str  # repo-relative template path
    text: str


SPEC_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class RenderedWorkspace:
    """One workspace rendered once, in memory: its merged values, the derived context and every file, as if
    written under ``out_dir``. Commands render once and hand this value on (validation takes its specs, the plan
    its specs and values); nothing is written until ``write()``."""

    workspace: str
    root: Path
    out_dir: Path
    values: Values
    context: dict[str, Any] = field(repr=False)
    files: tuple[RenderedFile, ...] = field(repr=False)

    def path_of(self, item: RenderedFile) -> Path:
        """Where ``item`` lives (or would live) on disk."""
        return self.out_dir / item.relpath

    def file(self, relpath: str) -> RenderedFile | None:
        return next((item for item in self.files if item.relpath == relpath), None)

    def texts(self) -> dict[Path, str]:
        """Every YAML file's intended path and text: what the validator reads instead of the disk."""
        return {self.path_of(item): item.text for item in self.files if item.relpath.endswith(SPEC_SUFFIXES)}

    def spec_files(self) -> tuple[RenderedFile, ...]:
        """The rendered files that are Azure ML specs (``Repo.is_spec_text``, the one test): what validation
        checks, the plan applies and the demo lists."""
        repo = _repo(self.root)
        return tuple(item for item in self.files
                     if item.relpath.endswith(SPEC_SUFFIXES) and repo.is_spec_text(item.text))  # fmt: skip

    def write(self) -> list[Path]:
        """Write what differs (atomically); return the paths that changed."""
        return write_rendered(list(self.files), self.out_dir)


def render(
    workspace: str, root: Path | None = None, out_dir: Path | None = None, job_name: str | None = None
) -> RenderedWorkspace:
    """Render ``workspace`` of the repo at ``root`` (default: the active repo) once, writing nothing."""
    root = Path(root).resolve() if root is not None else active().root
    out_dir = Path(out_dir).resolve() if out_dir is not None else default_out_dir(workspace, root)
    values = load_values(workspace, root)
    context = build_context(values, job_name=job_name)
    files = _render_files(workspace, root, out_dir, context)
    return RenderedWorkspace(workspace, root, out_dir, values, context, tuple(files))


def _repo(root: Path) -> Repo:
    """The Repo of ``root``: the active one when it is that root (its facts are cached already)."""
    return active() if active().root == Path(root) else Repo(Path(root))


def default_out_dir(workspace: str, root: Path | None = None) -> Path:
    repo = _repo(root) if root is not None else active()
    return repo.root if workspace == DEFAULT_WORKSPACE else repo.build_dir / workspace


def _environment(root: Path):  # -> jinja2.Environment
    import jinja2  # noqa: PLC0415 - heavy library, imported when used

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_repo(root).templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["y"] = yaml_scalar
    env.globals["schema_url"] = _repo(root).schema_url  # `$schema` lines come from that root's schemas/kinds.yaml
    return env


def template_paths(root: Path | None = None) -> list[Path]:
    base = (_repo(root) if root is not None else active()).templates_dir
    return sorted(
        p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith("_")
    )


def render_workspace(
    workspace: str, out_dir: Path, root: Path | None = None, job_name: str | None = None
) -> list[RenderedFile]:
    """The files of ``render(workspace, root, out_dir, job_name)`` (pure: writes nothing)."""
    return list(render(workspace, root, out_dir, job_name).files)


def _render_files(workspace: str, root: Path, out_dir: Path, context: dict[str, Any]) -> list[RenderedFile]:
    """Every template rendered for one workspace as if written under ``out_dir``."""
    import jinja2  # noqa: PLC0415 - heavy library, imported when used

    env = _environment(root)
    rendered: list[RenderedFile] = []
    for path in template_paths(root):
        rel_template = path.relative_to(_repo(root).templates_dir).as_posix()
        if not rel_template.endswith(TEMPLATE_SUFFIX):
            rendered.append(RenderedFile(rel_template, f"{TEMPLATES_DIR}/{rel_template}", path.read_text()))
            continue
        relpath = rel_template[: -len(TEMPLATE_SUFFIX)]
        file_dir = (out_dir / relpath).parent

        def local(path_or_uri: str, _dir: Path = file_dir) -> str:
            """A repo-relative local path as seen from the rendered file; URIs and asset references unchanged."""
            if "://" in path_or_uri or path_or_uri.startswith("azureml:"):
                return path_or_uri
            return PurePosixPath(os.path.relpath(root / path_or_uri, _dir)).as_posix()

        try:
            body = env.get_template(rel_template).render(**context, local=local)
        except jinja2.UndefinedError as error:
            raise UserError(f"{TEMPLATES_DIR}/{rel_template}: undefined value in template: {error.message}") from None
        except jinja2.TemplateSyntaxError as error:
            raise UserError(
                f"{TEMPLATES_DIR}/{rel_template}:{error.lineno}: template syntax: {error.message}"
            ) from None
        if not body.strip():
            continue  # a template may render to nothing for a workspace (e.g. no cluster in serverless mode)
        header = HEADER.format(template=f"{TEMPLATES_DIR}/{rel_template}", workspace=workspace)
        rendered.append(RenderedFile(relpath, f"{TEMPLATES_DIR}/{rel_template}", header + body))
    return rendered


def write_rendered(files: list[RenderedFile], out_dir: Path) -> list[Path]:
    """Write what differs (atomically); return the files that changed. Unchanged files keep their timestamps."""
    changed = []
    for item in files:
        target = out_dir / item.relpath
        if not target.exists() or target.read_text() != item.text:
            atomic_write_text(target, item.text)
            changed.append(target)
    return changed


def check_rendered(files: list[RenderedFile], out_dir: Path, root: Path | None = None) -> list[str]:
    """One line per file that is missing or differs from what the templates give, with a short diff."""
    root = Path(root) if root is not None else active().root
    problems: list[str] = []
    for item in files:
        target = out_dir / item.relpath
        shown = os.path.relpath(target, root)
        if not target.exists():
            problems.append(f"{shown}: missing; {item.template} renders it (run `python -m tools render`)")
            continue
        current = target.read_text()
        if current != item.text:
            diff = difflib.unified_diff(
                current.splitlines(),
                item.text.splitlines(),
                f"{shown} (committed)",
                f"{shown} (rendered)",
                lineterm="",
                n=0,
            )
            detail = "\n".join(f"    {line}" for line in list(diff)[:12])
            problems.append(
                f"{shown}: differs from what {item.template} renders (run `python -m tools render`)\n{detail}"
            )
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", metavar="NAME", help="one workspace (default: all of workspaces/*.yaml)")
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="output root (default: repo root for the default "
        f"workspace '{DEFAULT_WORKSPACE}', build/<name>/ for the others)",
    )
    parser.add_argument(
        "--check", action="store_true", help="compare the committed render with the templates; write nothing"
    )
    parser.add_argument(
        "--job-name", metavar="NAME", help="the submitted fine-tune job's name, for the model registration spec's path"
    )


def run(args: argparse.Namespace) -> int:
    names = [args.workspace] if args.workspace else workspace_names()
    if args.out and len(names) > 1:
        raise UserError("--out needs --workspace NAME (one output root per workspace)")
    failures: list[str] = []
    for name in names:
        try:
            rendered = render(name, out_dir=args.out, job_name=args.job_name)
        except UserError as error:
            failures.append(str(error))
            continue
        out_dir, files = rendered.out_dir, list(rendered.files)
        if args.check:
            if out_dir == rendered.root or args.out:
                failures.extend(check_rendered(files, out_dir, rendered.root))
            continue
        changed = rendered.write()
        where = os.path.relpath(out_dir, Path.cwd())
        detail = ", ".join(os.path.relpath(path, out_dir) for path in changed) if changed else "none"
        print(f"{name}: {counted(len(files), 'file')} in {where}; changed: {detail}")
    if failures:
        for line in failures:
            print(line)
        return 1
    if args.check:
        print(f"render --check: committed specs match the templates ({', '.join(names)} render cleanly)")
    return 0
