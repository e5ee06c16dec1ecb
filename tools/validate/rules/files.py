"""Local paths a spec references exist, relative to the spec file: code folders, conda files, data files, pipeline
input files, a model's local files (azure-ai-ml uploads a model's local ``path:`` before registering it, and
``az ml model create`` fails when it is missing: ``ModelOperations.create_or_update`` -> ``_check_and_upload_path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.validate.document import Spec
from tools.validate.rules.support import Emit, RuleContext


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    if spec.kind in ("commandJob", "commandComponent") and isinstance(data.get("code"), str):
        local_path(spec, ("code",), data["code"], emit, "code folder")
    elif spec.kind == "data":
        local_path(spec, ("path",), data.get("path"), emit, "data file")
    elif spec.kind == "model":
        local_path(spec, ("path",), data.get("path"), emit, "model path")
    elif spec.kind == "environment" and isinstance(data.get("conda_file"), str):
        local_path(spec, ("conda_file",), data["conda_file"], emit, "conda file")
    elif spec.kind == "pipelineJob":
        inputs = data.get("inputs")
        for name, value in inputs.items() if isinstance(inputs, dict) else []:
            if isinstance(value, dict):
                local_path(spec, ("inputs", name, "path"), value.get("path"), emit, "input file")


def local_path(spec: Spec, key_path: tuple, value: Any, emit: Emit, what: str) -> None:
    """A local (non-URI) path must exist relative to the spec file."""
    if not isinstance(value, str) or ":" in value.split("/")[0] or value.startswith("${{"):
        return
    try:
        target = (spec.path.parent / value).resolve()
        exists = target.exists()
    except (OSError, ValueError) as error:  # a name too long for the file system (ENAMETOOLONG)
        shown = value if len(value) <= 80 else value[:77] + "..."
        emit(key_path, f"{what} {shown!r} is not a usable local path ({getattr(error, 'strerror', None) or error})",
             rule="local-path")  # fmt: skip
        return
    if not exists:
        emit(
            key_path,
            f"{what} {value!r} does not exist (looked for {relative_display(target, Path.cwd())}); "
            + ("run `python -m tools data prepare` or fix the path" if "data" in what or "input" in what
               else "fix the path"),
            rule="local-path",
        )


def relative_display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
