"""Azure Resource Manager ids of the resources the platform stage creates: one format per resource type.

Formats: learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules and the `id` that
`az ml workspace show`, `az ml registry show`, `az identity show` print."""

from __future__ import annotations

ML_PROVIDER = "Microsoft.MachineLearningServices"


def resource_group_id(subscription: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}"


def workspace_id(subscription: str, resource_group: str, name: str) -> str:
    return f"{resource_group_id(subscription, resource_group)}/providers/{ML_PROVIDER}/workspaces/{name}"


def registry_id(subscription: str, resource_group: str, name: str) -> str:
    return f"{resource_group_id(subscription, resource_group)}/providers/{ML_PROVIDER}/registries/{name}"


def identity_id(subscription: str, resource_group: str, name: str) -> str:
    return (f"{resource_group_id(subscription, resource_group)}/providers/Microsoft.ManagedIdentity"
            f"/userAssignedIdentities/{name}")  # fmt: skip


def endpoint_id(subscription: str, resource_group: str, workspace: str, endpoint: str) -> str:
    return f"{workspace_id(subscription, resource_group, workspace)}/onlineEndpoints/{endpoint}"
