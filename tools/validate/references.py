"""The grammar of azureml: references: registry assets, job outputs, datastore paths, workspace assets.

The forms are Azure ML's documented URI schemes (https://learn.microsoft.com/azure/machine-learning/concept-data#uri
and https://learn.microsoft.com/azure/machine-learning/reference-yaml-core-syntax); rules and interface lookups
import these patterns from here.
"""

from __future__ import annotations

import re

REGISTRY_ASSET = re.compile(
    r"^azureml://registries/(?P<registry>[A-Za-z0-9][A-Za-z0-9_-]{2,32})/(?P<noun>components|models|environments|data)"
    r"/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)/(?:(?P<sel>versions|labels)/(?P<ref>[A-Za-z0-9][A-Za-z0-9._-]*))$"
)
REGISTRY_UNVERSIONED = re.compile(
    r"^azureml://registries/(?P<registry>[A-Za-z0-9][A-Za-z0-9_-]{2,32})/(?P<noun>components|models|environments|data)"
    r"/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)/?$"
)
JOB_OUTPUT = re.compile(r"^azureml://jobs/[A-Za-z0-9_-]+/outputs/[A-Za-z0-9_]+(/.*)?$")
DATASTORE_PATH = re.compile(
    r"^azureml://(subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?datastores/[A-Za-z0-9_]+/paths/.+$"
)
WORKSPACE_ASSET = re.compile(
    r"^azureml:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<version>[A-Za-z0-9._-]+)|@(?P<label>[A-Za-z0-9_-]+))?$"
)
ASSET_KEYS = ("path", "model", "environment", "component", "compute")


def model_name_from_uri(uri: object) -> str | None:
    match = REGISTRY_ASSET.match(uri) if isinstance(uri, str) else None
    return match["name"] if match and match["noun"] == "models" else None
