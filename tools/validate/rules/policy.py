"""Everything ``policy: prod`` means, in one place: every asset reference pins a version (no labels, no bare
names), deployments serve registry models on at least two instances, environment images pin a tag, managed
online endpoints are keyless (aad_token)."""

from __future__ import annotations

from tools.validate.document import Spec
from tools.validate.references import ASSET_KEYS, REGISTRY_ASSET, REGISTRY_UNVERSIONED, WORKSPACE_ASSET
from tools.validate.rules._walk import walk
from tools.validate.rules.support import Emit, RuleContext

PROD = "prod"
KEYLESS = ("aad_token", "aadtoken")  # auth_mode as written, and as azure-ai-ml compares it (casing.py)
MIN_PROD_INSTANCES = 2  # Azure's SLA for managed online endpoints needs 3; 2 is our floor for a rolling update


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    if context.policy != PROD:
        return
    data = spec.data
    for path, value in walk(data):
        if not isinstance(value, str) or path == ("$schema",):
            continue
        if value.startswith("azureml://registries/"):
            if REGISTRY_UNVERSIONED.match(value):
                emit(path, f"prod policy: pin a version ({value} names none)", rule="prod-pin")
            match = REGISTRY_ASSET.match(value)
            if match and match["sel"] == "labels":
                emit(path, f"prod policy: pin a version instead of labels/{match['ref']} ({value})", rule="prod-pin")
        elif value.startswith("azureml:") and not value.startswith("azureml://") and path and path[-1] in ASSET_KEYS:
            match = WORKSPACE_ASSET.match(value)
            if match and path[-1] != "compute" and not match["version"]:
                emit(path, f"prod policy: pin a version ({value} has none)", rule="prod-pin")
    if spec.kind == "managedOnlineEndpoint" and str(data.get("auth_mode", "key")).lower() not in KEYLESS:
        emit(("auth_mode",) if "auth_mode" in data else (),
             f"prod policy: a keyless endpoint (auth_mode: aad_token: callers present a Microsoft Entra token; "
             f"how-to-authenticate-online-endpoint), got {data.get('auth_mode', 'key (the default)')}",
             rule="prod-keyless")  # fmt: skip
    if spec.kind == "managedOnlineDeployment":
        count = data.get("instance_count")
        if isinstance(count, int) and not isinstance(count, bool) and 1 <= count < MIN_PROD_INSTANCES:
            emit(("instance_count",), f"prod policy: at least {MIN_PROD_INSTANCES} instances, got {count}",
                 rule="prod-ha")  # fmt: skip
        model = data.get("model")
        if isinstance(model, str) and not model.startswith("azureml://registries/"):
            emit(
                ("model",),
                f"prod policy: serve a registry model (azureml://registries/<registry>/models/<name>/"
                f"versions/<v>), got {model!r}; promote it with `python -m tools promote`",
                rule="prod-registry",
            )
    elif spec.kind == "environment":
        image = data.get("image")
        if isinstance(image, str) and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            emit(("image",), f"prod policy: pin the image tag ({image})", rule="prod-pin")
