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
    if spec.kind in ("pipelineJob", "pipelineComponent") and isinstance(data.get("jobs"), dict):
        for name, step in data["jobs"].items():
            if isinstance(step, dict) and isinstance(step.get("component"), str):
                usable_path(spec, ("jobs", name, "component"), step["component"], emit, "component")


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and ":" not in value.split("/")[0] and not value.startswith("${{")


def _unusable(spec: Spec, key_path: tuple, value: str, emit: Emit, what: str, error: OSError | ValueError) -> None:
    shown = value if len(value) <= 80 else value[:77] + "..."
    emit(key_path, f"{what} {shown!r} is not a usable local path ({getattr(error, 'strerror', None) or error})",
         rule="local-path")  # fmt: skip


def usable_path(spec: Spec, key_path: tuple, value: Any, emit: Emit, what: str) -> None:
    """A local path the file system can look up at all (a name longer than NAME_MAX or a path past PATH_MAX is a
    finding on its key; whether it exists is another rule's business, e.g. a step's ``component:``)."""
    if not _is_local(value):
        return
    try:
        (spec.path.parent / value).resolve().exists()
    except (OSError, ValueError) as error:  # ENAMETOOLONG
        _unusable(spec, key_path, value, emit, what, error)


def local_path(spec: Spec, key_path: tuple, value: Any, emit: Emit, what: str) -> None:
    """A local (non-URI) path must exist relative to the spec file."""
    if not _is_local(value):
        return
    try:
        target = (spec.path.parent / value).resolve()
        exists = target.exists()
    except (OSError, ValueError) as error:  # a name too long for the file system (ENAMETOOLONG)
        _unusable(spec, key_path, value, emit, what, error)
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
