"""Settings Azure refuses to change once a workspace or registry exists, checked on the diff against the previous
version of the same spec: say so before Azure does.

  workspace  ``location``: a workspace's region is fixed ("Workspace move doesn't support migration across Azure
             regions", learn.microsoft.com/azure/machine-learning/how-to-move-workspace, "Limitations").
             ``managed_network.isolation_mode`` only ever tightens: "Once a managed VNet workspace is configured to
             allow internet outbound, the workspace cannot be reconfigured to disabled. Similarly, once ... allow
             only approved outbound, the workspace cannot be reconfigured to allow internet outbound"; "Once you
             enable managed virtual network isolation of your workspace ..., you can't disable it"
             (learn.microsoft.com/azure/machine-learning/how-to-managed-network, note and "Limitations").
  registry   ``location``: "The primary region can't be changed after registry creation, but the other regions can
             be updated at a later point" (learn.microsoft.com/azure/machine-learning/how-to-manage-registries,
             "Choose Azure regions"); the primary region stays in ``replication_locations`` (same page: "The primary
             location is listed twice").

``refused_changes(kind, old, new)`` is the pure core, shared with the bootstrap stage, which compares the rendered
spec with the live resource (`az ml workspace show`) before any call. Here, layer D compares a spec with its
previous version: the file on disk when the spec being checked is an in-memory render that differs from it, else
the last commit's version of the same path (``git show HEAD:<path>``). A different ``name`` is a different
resource: nothing to compare.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.validate.document import Spec
from tools.validate.rules.support import Emit, RuleContext

MANAGED_NETWORK_DOCS = "learn.microsoft.com/azure/machine-learning/how-to-managed-network"
REGISTRY_DOCS = "learn.microsoft.com/azure/machine-learning/how-to-manage-registries"
MOVE_DOCS = "learn.microsoft.com/azure/machine-learning/how-to-move-workspace"
# Isolation modes from the least to the most isolated; a workspace moves only to the right.
ISOLATION_ORDER = ("disabled", "allow_internet_outbound", "allow_only_approved_outbound")
KINDS = ("workspace", "registry")


@dataclass(frozen=True)
class Refusal:
    key_path: tuple[str, ...]
    message: str
    rule: str


def isolation_mode(data: dict[str, Any]) -> str:
    """The managed network's isolation mode in snake case (`show` prints AllowOnlyApprovedOutbound or snake case;
    no managed network is `disabled`)."""
    network = data.get("managed_network")
    mode = network.get("isolation_mode") if isinstance(network, dict) else None
    text = str(mode or "disabled")
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in text).lstrip("_")
    return snake


def _region(value: Any) -> str:
    return str(value or "").replace(" ", "").lower()


def refused_changes(kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[Refusal]:
    """What Azure would refuse in going from ``old`` (what exists) to ``new`` (what the spec asks): pure."""
    if kind not in KINDS or not isinstance(old, dict) or not isinstance(new, dict):
        return []
    if str(old.get("name", "")).lower() != str(new.get("name", "")).lower():
        return []  # another name is another resource
    refusals: list[Refusal] = []
    if old.get("location") and new.get("location") and _region(old["location"]) != _region(new["location"]):
        keep = f"cannot change to {new['location']}; keep {old['location']} or use a new {kind} name"
        if kind == "workspace":
            refusals.append(Refusal(("location",), f"workspace {new.get('name')} exists in {old['location']}: its "
                                    f"region {keep} ({MOVE_DOCS})", rule="workspace-immutable"))  # fmt: skip
        else:
            refusals.append(Refusal(("location",), f"registry {new.get('name')} exists in {old['location']}: its "
                                    f"primary region {keep} ({REGISTRY_DOCS})", rule="registry-immutable"))  # fmt: skip
    if kind == "workspace":
        before, after = isolation_mode(old), isolation_mode(new)
        if before in ISOLATION_ORDER and after in ISOLATION_ORDER and (
            ISOLATION_ORDER.index(after) < ISOLATION_ORDER.index(before)
        ):
            refusals.append(Refusal(("managed_network", "isolation_mode"), f"workspace {new.get('name')} is "
                                    f"{before}: a managed network's isolation cannot loosen to {after} "
                                    f"({MANAGED_NETWORK_DOCS}, Limitations)", rule="workspace-immutable"))  # fmt: skip
    if kind == "registry" and not refusals:
        regions = [_region(r.get("location")) for r in new.get("replication_locations") or [] if isinstance(r, dict)]
        if regions and new.get("location") and _region(new["location"]) not in regions:
            refusals.append(Refusal(("replication_locations",), f"registry {new.get('name')}: the primary region "
                                    f"{new['location']} must stay in replication_locations ({REGISTRY_DOCS})",
                                    rule="registry-immutable"))  # fmt: skip
    return refusals


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    if spec.kind not in KINDS or not isinstance(spec.data, dict):
        return
    old = previous(spec)
    for refusal in refused_changes(spec.kind, old or {}, spec.data) if old is not None else []:
        emit(refusal.key_path, refusal.message, rule=refusal.rule)


# ----------------------------------------------------------------------------------------- the edge: reading


def previous(spec: Spec) -> dict[str, Any] | None:
    """The previous version of ``spec``: the file on disk when ``spec`` is a differing in-memory render of it, else
    the last commit's version of the same path; None when there is none (a new spec, a path outside Git)."""
    path = Path(spec.path)
    try:
        on_disk = path.read_text(encoding="utf-8") if path.is_file() else None
    except OSError:
        on_disk = None
    text = on_disk if on_disk is not None and on_disk != spec.text else _committed(str(path.resolve()))
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


@functools.lru_cache(maxsize=64)
def _committed(path: str) -> str | None:
    """``git show HEAD:<path>`` of the repository holding ``path``; None outside Git or for an untracked file."""
    folder = Path(path).parent
    if not folder.is_dir():
        return None
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True,
                             timeout=10, check=False)  # fmt: skip
        if top.returncode != 0:
            return None
        relative = Path(path).relative_to(Path(top.stdout.strip()).resolve()).as_posix()
        shown = subprocess.run(["git", "show", f"HEAD:{relative}"], cwd=folder, capture_output=True, text=True,
                               timeout=10, check=False)  # fmt: skip
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return shown.stdout if shown.returncode == 0 else None
