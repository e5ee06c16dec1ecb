"""The few checks that belong to one kind and no other concern: a model registration's path, an asset's version
type, an environment's conda_file type, an endpoint's user-assigned identities."""

from __future__ import annotations

from tools.validate.document import Spec
from tools.validate.rules.support import Emit, RuleContext

IDENTITY_KEYS = {"resource_id", "client_id", "principal_id"}


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    data = spec.data
    if spec.kind in ("data", "model") and "version" in data and not isinstance(data["version"], str | int):
        emit(("version",), f"expected a version string, got {data['version']!r}", rule="version")
    if spec.kind == "model" and not data.get("path"):
        emit(
            ("path",),
            "a model registration needs `path`: azureml://jobs/<job>/outputs/<output>, a datastore URI "
            "or a local folder",
            rule="required",
        )
    elif spec.kind == "environment":
        conda = data.get("conda_file")
        if conda is not None and not isinstance(conda, str):
            emit(("conda_file",), f"expected the path of a conda YAML file, got {type(conda).__name__}", rule="type")
    elif spec.kind == "managedOnlineEndpoint":
        _identity(data, emit)


def _identity(data: dict, emit: Emit) -> None:
    identity = data.get("identity")
    if not (isinstance(identity, dict) and identity.get("type") == "user_assigned"):
        return
    items = identity.get("user_assigned_identities") or []
    if not items:
        emit(
            ("identity", "user_assigned_identities"),
            "user_assigned identity needs at least one resource_id",
            rule="identity",
        )
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        for key in sorted(set(item) - IDENTITY_KEYS):
            emit(
                ("identity", "user_assigned_identities", index, key),
                f"unknown key '{key}' (expected resource_id)",
                rule="unknown-key",
            )
        rid = item.get("resource_id")
        if isinstance(rid, str) and "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" not in rid:
            emit(
                ("identity", "user_assigned_identities", index, "resource_id"),
                "expected /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/"
                "userAssignedIdentities/<name>",
                rule="identity",
            )
