"""A workspace as the operate commands see it: rendered once (``tools.render.engine.render``), validated once,
its specs in memory; refused while validation reports errors or the committed render is stale.

Naming: ``values_name`` is the values file's name (``dev``, ``prod``: ``--workspace``); ``ml_workspace`` is the
Azure ML workspace it points at (``mlw-ultrachat-dev``: ``-w``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.text import counted
from tools.core.yamlio import plain
from tools.render.engine import RenderedWorkspace, check_rendered, render
from tools.render.values import DEFAULT_WORKSPACE
from tools.validate.cli import validate_specs
from tools.validate.document import parse_spec
from tools.validate.findings import ERROR, to_text
from tools.validate.rules.files import relative_display


@dataclass(frozen=True)
class RenderedSpec:
    """One rendered spec: repo-relative path, kind (schemas/kinds.yaml) and content."""

    path: str
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Workspace:
    """What the commands need to know about a workspace (from its values and its render)."""

    values_name: str  # workspaces/<values_name>.yaml
    subscription: str
    resource_group: str
    ml_workspace: str  # Azure ML workspace name (-w)
    location: str | None
    identity: str
    out_dir: str  # where the specs are, repo-relative ("." for the default workspace)
    values: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    specs: tuple[RenderedSpec, ...] = ()

    def scope(self) -> list[str]:
        return ["-g", self.resource_group, "-w", self.ml_workspace, "--subscription", self.subscription]

    def of_kind(self, *wanted: str) -> list[RenderedSpec]:
        return [spec for spec in self.specs if spec.kind in wanted]

    @property
    def rollout(self) -> dict[str, Any]:
        """The rollout values; ``online_check.data`` resolved (null: ``data.gate.path``, which must be local)."""
        rollout = dict(self.values.get("rollout") or {"steps": [100], "keep_old": False, "mirror": 0})
        check = dict(rollout.get("online_check") or {})
        if check.get("enabled"):
            if not check.get("data"):
                gate = str(((self.values.get("data") or {}).get("gate") or {}).get("path") or "")
                if not gate or "://" in gate or gate.startswith("azureml:"):
                    raise UserError(f"workspaces/{self.values_name}.yaml: rollout.online_check.data: null takes "
                                    f"data.gate.path, which is {gate or 'not set'}: expected a local JSONL of gate "
                                    "rows (the check runs where apply runs); name one")  # fmt: skip
                check["data"] = gate
            rollout["online_check"] = check
        return rollout


def validate_rendered(rendered: RenderedWorkspace, root: Path, layers: str = "ABCD") -> tuple[list[Any], list[Any]]:
    """Parse and validate a RenderedWorkspace's specs in memory: (parsed specs, error findings)."""
    parsed = [
        parse_spec(rendered.path_of(item), relative_display(rendered.path_of(item), root), item.text)
        for item in rendered.spec_files()  # the one test of which rendered files are specs
    ]
    report = validate_specs(parsed, layers, rendered.values.data.get("policy", "default"), workspace=rendered.workspace)
    return parsed, [f for f in report.findings if f.severity == ERROR]


def load_workspace(name: str, root: Path, layers: str = "ABCD", rendered: RenderedWorkspace | None = None) -> Workspace:
    """Render ``name`` once (or take the caller's ``rendered``: a RenderedWorkspace of it), check the committed
    render (default workspace) or write build/<name>/ (the others, which `az ml -f` reads), validate the
    in-memory specs; UserError on findings."""
    rendered = rendered if rendered is not None else render(name, root)
    if name == DEFAULT_WORKSPACE:
        stale = check_rendered(list(rendered.files), rendered.out_dir, root)
        if stale:
            print("\n".join(stale), file=sys.stderr)
            raise UserError(f"{name}: committed specs differ from the templates; run `python -m tools render`")
    else:
        rendered.write()
    values = rendered.values.data
    parsed, errors = validate_rendered(rendered, root, layers)
    if errors:
        print(to_text(errors), file=sys.stderr)
        raise UserError(
            f"{name}: {counted(len(errors), 'validation error')}; refusing to plan "
            f"(python -m tools validate --workspace {name})"
        )
    specs = tuple(
        RenderedSpec(Path(os.path.relpath(spec.path, root)).as_posix(), spec.kind or "", plain(spec.data) or {})
        for spec in parsed
        if spec.data is not None
    )
    ws = values["workspace"]
    return Workspace(
        values_name=name,
        subscription=str(ws["subscription_id"]),
        resource_group=str(ws["resource_group"]),
        ml_workspace=str(ws["name"]),
        location=ws.get("location"),
        identity=str(values["identity"]["name"]),
        out_dir=Path(os.path.relpath(rendered.out_dir, root)).as_posix(),
        values=values,
        specs=specs,
    )
