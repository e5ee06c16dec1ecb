"""`python -m tools diff`: unified diff of a workspace's rendered specs, between two git revisions or between two
workspaces. The working tree's side is rendered once in memory (``tools.render.engine.render``: a
``RenderedWorkspace``), never written. Empty output and exit 0 when the renders are equal (--exit-code: exit 1
when they differ).

  --base REV        the render of REV (the whole revision extracted with `git archive` into a temporary folder and
                    rendered by its own tools, values, templates and schemas) against the render of the working
                    tree; REV defaults to HEAD
  --against OTHER   the working tree's render of OTHER against that of --workspace, both rendered as if into the
                    same folder so that only the values' differences show
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tools.core.errors import UserError
from tools.core.repo import Repo, active
from tools.render.engine import TEMPLATE_SUFFIX, RenderedWorkspace, default_out_dir, render
from tools.render.values import DEFAULT_WORKSPACE


def unified_renders(before: dict[str, str], after: dict[str, str], label_a: str, label_b: str) -> str:
    """One unified diff over two renders ({relpath: text}); files in path order, nothing when equal."""
    parts = []
    for rel in sorted(set(before) | set(after)):
        old, new = before.get(rel), after.get(rel)
        if old == new:
            continue
        parts.extend(
            difflib.unified_diff(
                (old or "").splitlines(True),
                (new or "").splitlines(True),
                f"{label_a}/{rel}" if old is not None else "/dev/null",
                f"{label_b}/{rel}" if new is not None else "/dev/null",
            )
        )
    text = "".join(parts)
    return text if not text or text.endswith("\n") else text + "\n"


def texts_of(rendered: RenderedWorkspace) -> dict[str, str]:
    """A render's files as {relpath: text} (what the diff compares)."""
    return {item.relpath: item.text for item in rendered.files}


def render_map(workspace: str, root: Path, out_dir: Path | None = None) -> dict[str, str]:
    """``workspace`` rendered once in memory (``tools.render.engine.render``), as if written under ``out_dir``
    (default: where it is written for real), nothing written."""
    return texts_of(render(workspace, root, out_dir))


def _git(root: Path, *argv: str, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=not binary, check=False)


def extract_revision(root: Path, rev: str, dest: Path) -> None:
    """The whole tree of ``rev`` into ``dest``."""
    resolved = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if resolved.returncode != 0:
        raise UserError(f"--base {rev}: not a git revision of {root}")
    archive = _git(root, "archive", "--format=tar", rev, binary=True)
    if archive.returncode != 0:
        raise UserError(f"--base {rev}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")


def render_map_at_revision(workspace: str, base_root: Path, rev: str) -> dict[str, str]:
    """Render ``workspace`` with the revision's own tools (so old values meet their own schema), then read back
    every file its templates produce, keyed like :func:`render_map`."""
    result = subprocess.run(
        [sys.executable, "-m", "tools", "render", "--workspace", workspace],
        cwd=base_root,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip().splitlines()
        raise UserError(
            f"--base {rev}: {workspace} does not render there: {detail[-1] if detail else result.returncode}"
        )
    out_dir = default_out_dir(workspace, base_root)
    rendered: dict[str, str] = {}
    templates = Repo(base_root).templates_dir
    for template in sorted(templates.rglob("*")):
        if template.is_file():
            relpath = template.relative_to(templates).as_posix().removesuffix(TEMPLATE_SUFFIX)
            target = out_dir / relpath
            if target.is_file():
                rendered[relpath] = target.read_text()
    return rendered


def diff_revision(workspace: str, rev: str, root: Path) -> str:
    """Render of ``workspace`` at ``rev`` against the working tree's (a workspace new since ``rev``: all added)."""
    current = render_map(workspace, root)
    with tempfile.TemporaryDirectory(prefix="tools-diff-") as tmp:
        base_root = Path(tmp)
        extract_revision(root, rev, base_root)
        has_workspace = (Repo(base_root).workspaces_dir / f"{workspace}.yaml").is_file()
        if not has_workspace:
            base = {}
        elif any((base_root / "tools" / rel).is_file() for rel in ("render.py", "render/engine.py")):
            base = render_map_at_revision(workspace, base_root, rev)
        else:  # a tree without its own tools: render its values and templates with ours
            base = render_map(workspace, base_root)
    return unified_renders(base, current, f"a/{rev}", "b")


def diff_workspaces(workspace: str, other: str, root: Path) -> str:
    out_dir = default_out_dir(workspace, root)  # both as if in one folder: only the values' differences show
    first = render_map(workspace, root, out_dir)
    second = render_map(other, root, out_dir)
    return unified_renders(first, second, f"a/{workspace}", f"b/{other}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", metavar="NAME", default=None, help="workspace values name (default: dev)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--base", metavar="REV", help="git revision to compare the working tree with (default HEAD)")
    scope.add_argument("--against", metavar="OTHER", help="another workspace to compare with")
    parser.add_argument("--exit-code", action="store_true", help="exit 1 when the renders differ")
    parser.add_argument("--root", type=Path, default=None, help="repo root (default: this checkout)")


def run(args: argparse.Namespace) -> int:
    root = active().root
    name = args.workspace or DEFAULT_WORKSPACE
    text = diff_workspaces(name, args.against, root) if args.against else diff_revision(name, args.base or "HEAD", root)
    print(text, end="")
    return 1 if args.exit_code and text else 0
