"""`python -m tools diff`: unified diff of a workspace's rendered specs, between two git revisions or between two
workspaces. Empty output and exit 0 when the renders are equal (--exit-code: exit 1 when they differ).

  --base REV        the render of REV (its own workspaces/, templates/ and schemas/, extracted with `git archive`
                    into a temporary folder) against the render of the working tree; REV defaults to HEAD
  --against OTHER   the working tree's render of OTHER against that of --workspace, both rendered as if into the
                    same folder so that only the values' differences show
"""

from __future__ import annotations

import argparse
import difflib
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tools.catalog import REPO_ROOT
from tools.errors import UserError

RENDER_INPUTS = ("workspaces", "templates", "schemas")


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


def render_map(workspace: str, root: Path, out_dir: Path | None = None) -> dict[str, str]:
    from tools.render import default_out_dir, render_workspace

    out = out_dir if out_dir is not None else default_out_dir(workspace, root)
    return {f.relpath: f.text for f in render_workspace(workspace, out, root)}


def _git(root: Path, *argv: str, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=not binary, check=False)


def extract_revision(root: Path, rev: str, dest: Path) -> None:
    """The render inputs of ``rev`` (those it has) into ``dest``."""
    resolved = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if resolved.returncode != 0:
        raise UserError(f"--base {rev}: not a git revision of {root}")
    present = [p for p in RENDER_INPUTS if _git(root, "cat-file", "-e", f"{rev}:{p}").returncode == 0]
    if not present:
        return
    archive = _git(root, "archive", "--format=tar", rev, "--", *present, binary=True)
    if archive.returncode != 0:
        raise UserError(f"--base {rev}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")


def diff_revision(workspace: str, rev: str, root: Path = REPO_ROOT) -> str:
    """Render of ``workspace`` at ``rev`` against the working tree's (a workspace new since ``rev``: all added)."""
    from tools.render import default_out_dir
    from tools.values import workspace_names

    current = render_map(workspace, root)
    with tempfile.TemporaryDirectory(prefix="tools-diff-") as tmp:
        base_root = Path(tmp)
        extract_revision(root, rev, base_root)
        if (base_root / "workspaces").is_dir() and workspace in workspace_names(base_root):
            try:
                # Rendered as if into this checkout's output folder, so relative paths compare equal.
                base = render_map(workspace, base_root, default_out_dir(workspace, base_root))
            except UserError as error:
                raise UserError(f"--base {rev}: {workspace} does not render there: {error}") from None
        else:
            base = {}
    return unified_renders(base, current, f"a/{rev}", "b")


def diff_workspaces(workspace: str, other: str, root: Path = REPO_ROOT) -> str:
    from tools.render import default_out_dir

    out_dir = default_out_dir(workspace, root)
    first = render_map(workspace, root, out_dir)
    second = render_map(other, root, out_dir)
    return unified_renders(first, second, f"a/{workspace}", f"b/{other}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", metavar="NAME", default=None, help="workspace values name (default: dev)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--base", metavar="REV", help="git revision to compare the working tree with (default HEAD)")
    scope.add_argument("--against", metavar="OTHER", help="another workspace to compare with")
    parser.add_argument("--exit-code", action="store_true", help="exit 1 when the renders differ")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repo root (default: this checkout)")


def run(args: argparse.Namespace) -> int:
    from tools.values import DEFAULT_WORKSPACE

    root = args.root.resolve()
    name = args.workspace or DEFAULT_WORKSPACE
    text = diff_workspaces(name, args.against, root) if args.against else diff_revision(name, args.base or "HEAD", root)
    print(text, end="")
    return 1 if args.exit_code and text else 0
