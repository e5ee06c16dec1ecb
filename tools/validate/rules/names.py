"""Azure's naming rules: compute names, asset names (data, models, environments), endpoint and deployment names."""

from __future__ import annotations

import re

from tools.validate.document import Spec
from tools.validate.rules._walk import get_path

ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
COMPUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,15}$")
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
ASSET_KINDS = {"data": "asset", "model": "asset", "environment": "environment"}


def check(spec: Spec, emit, context) -> None:  # noqa: ANN001 - Emit, RuleContext (see rules/__init__)
    data = spec.data
    if spec.kind == "amlCompute":
        name = data.get("name")
        if isinstance(name, str) and not COMPUTE_NAME.match(name):
            emit(
                ("name",),
                f"compute name {name!r} must be 2-16 characters: a letter, then letters, digits or hyphens",
                rule="name",
            )
    elif spec.kind in ASSET_KINDS:
        asset_name(data, emit, ASSET_KINDS[spec.kind])
    elif spec.kind == "managedOnlineEndpoint":
        endpoint_name(spec, ("name",), emit)
    elif spec.kind == "managedOnlineDeployment":
        endpoint_name(spec, ("name",), emit)
        endpoint_name(spec, ("endpoint_name",), emit)


def asset_name(data: dict, emit, noun: str) -> None:  # noqa: ANN001
    """Azure asset names (data, models, environments): a letter or digit, then letters, digits, '-', '_', '.'."""
    name = data.get("name")
    if isinstance(name, str) and not ASSET_NAME.match(name):
        emit(
            ("name",),
            f"{noun} name {name!r} must start with a letter or digit and hold only letters, digits, '-', '_' and '.'",
            rule="name",
        )


def endpoint_name(spec: Spec, key: tuple, emit) -> None:  # noqa: ANN001
    name = get_path(spec.data, key)
    if isinstance(name, str) and not ENDPOINT_NAME.match(name):
        emit(
            key,
            f"{name!r} must be 3-32 characters: a letter first, then letters, digits or hyphens, "
            "not ending with a hyphen",
            rule="name",
        )
