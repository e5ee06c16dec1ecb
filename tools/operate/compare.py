"""Compare a rendered spec with what Azure holds (``az ml <noun> show``), on the keys the spec sets.

``show`` returns the service's view: server fields (`id`, `creation_context`, `provisioning_state`, `traffic`,
filled `properties`, default `request_settings` and probes) and normalised values: ids come back as long ARM ids
where the spec wrote `azureml:name:version`, enum values in another casing (`auth_mode: key` / `Key`), VM sizes
upper-cased (learn.microsoft.com `how-to-troubleshoot-online-endpoints`; `az ml online-deployment show` output). So
only the spec's keys are compared (a subset, recursively), after ``normalise``. Pure functions: the reconcile step
(update what differs) and `python -m tools drift` share them."""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml

# Keys whose values Azure treats case-insensitively and may return in another casing.
CASE_INSENSITIVE = frozenset(
    {"auth_mode", "type", "tier", "size", "instance_type", "public_network_access", "egress_public_network_access"}
)
# Keys of a spec that are not comparable with `show` output, per kind: local files Azure uploads and resolves.
NOT_COMPARED: dict[str, frozenset[str]] = {
    "managedOnlineDeployment": frozenset({"name"}),  # the colour differs from the spec's during blue/green
    "model": frozenset({"path"}),
    "environment": frozenset({"conda_file", "build"}),
    "data": frozenset({"path"}),
}
_ASSET_ID = re.compile(
    r"^(?:azureml:)?/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/"
    r"workspaces/[^/]+/(?P<noun>models|environments|components|data)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$",
    re.IGNORECASE,
)
_SHORT_ID = re.compile(r"^azureml:(?P<name>[A-Za-z0-9_.-]+):(?P<version>[A-Za-z0-9_.-]+)$")


def normalise(key: str, value: Any) -> Any:
    """One scalar in the form both sides agree on."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return str(value) if key == "version" else value  # versions: "1" and 1 are the same version
    text = str(value)
    for pattern in (_ASSET_ID, _SHORT_ID):
        match = pattern.match(text)
        if match:
            return f"azureml:{match['name']}:{match['version']}"
    if text.startswith(("/subscriptions/", "azureml://")):
        return text.lower()  # ARM ids and registry URIs are case-insensitive
    if key in CASE_INSENSITIVE:
        return text.lower()
    return text


def project(want: Any, have: Any, key: str = "") -> tuple[Any, Any]:
    """(spec, live) cut down to the spec's keys and normalised. A key the service lacks shows as absent."""
    if isinstance(want, dict):
        have_map = have if isinstance(have, dict) else {}
        pairs = {k: project(v, have_map.get(k, _ABSENT), str(k)) for k, v in want.items()}
        return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items() if p[1] is not _ABSENT}
    if isinstance(want, list):
        have_list = have if isinstance(have, list) else []
        pairs_list = [project(w, have_list[i] if i < len(have_list) else _ABSENT, key) for i, w in enumerate(want)]
        extra = [normalise(key, h) if not isinstance(h, dict | list) else h for h in have_list[len(want) :]]
        return [p[0] for p in pairs_list], [p[1] for p in pairs_list if p[1] is not _ABSENT] + extra
    if have is _ABSENT:
        return normalise(key, want), _ABSENT
    return normalise(key, want), normalise(key, have) if not isinstance(have, dict | list) else have


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def comparable(kind: str, spec: dict[str, Any], ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The spec's keys that a `show` can confirm."""
    skip = {"$schema", *NOT_COMPARED.get(kind, ()), *ignore}
    return {k: v for k, v in spec.items() if k not in skip}


def differing_keys(
    kind: str, spec: dict[str, Any], live: dict[str, Any], ignore: frozenset[str] = frozenset()
) -> list[str]:
    """Top-level keys of the spec whose (normalised) values differ from the live resource's."""
    want, have = project(comparable(kind, spec, ignore), live)
    return [k for k in want if want[k] != have.get(k, _ABSENT)]


def diff_text(kind: str, spec: dict[str, Any], live: dict[str, Any], label: str) -> str:
    """A unified diff (difflib) of the live resource against the spec, on the spec's keys; empty when equal."""
    want, have = project(comparable(kind, spec), live)
    if want == have:
        return ""

    def dump(data: Any) -> list[str]:
        return yaml.safe_dump(data, sort_keys=True, default_flow_style=False).splitlines(True)

    return "".join(difflib.unified_diff(dump(want), dump(have), f"{label} (rendered)", f"{label} (azure)"))
