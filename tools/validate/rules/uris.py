"""azureml: references are well-formed: registry assets, job outputs, datastore paths, workspace assets (the
patterns: tools.validate.references)."""

from __future__ import annotations

from tools.validate.document import Spec
from tools.validate.expressions import OPEN, substitute
from tools.validate.findings import WARNING
from tools.validate.references import (
    ASSET_KEYS,
    DATASTORE_PATH,
    JOB_OUTPUT,
    REGISTRY_ASSET,
    REGISTRY_UNVERSIONED,
    WORKSPACE_ASSET,
)
from tools.validate.rules._walk import strings_with
from tools.validate.rules.support import Emit, RuleContext


def check(spec: Spec, emit: Emit, context: RuleContext) -> None:
    """Every azureml: reference in the spec is well-formed."""
    if not spec.may_hold("azureml:"):  # every check below is of a value that starts with it
        return
    for path, value in strings_with(spec.data, "azureml:"):
        if not value.startswith("azureml:") or path == ("$schema",):
            continue
        # ${{default_datastore}}, ${{name}}: Azure fills them in; their own shape is rules.bindings'
        shape = substitute(value) if OPEN in value else value
        if shape.startswith("azureml://registries/"):
            # a reference (a step's component, a job input) may name no version; a registration's own path may not
            bare = REGISTRY_UNVERSIONED.match(shape) if path[-1] in ("component", "model") or "inputs" in path else None
            if bare:
                # Azure resolves a registry asset without a version to its latest one (reference-yaml-core-syntax):
                # valid, but the run changes when the registry publishes; policy: prod makes it an error
                emit(path, f"{value} names no version: Azure takes the latest {bare['noun'][:-1]} (pin "
                     f"{value.rstrip('/')}/versions/<version>)", WARNING, "registry-unpinned")
            elif not REGISTRY_ASSET.match(shape):
                emit(
                    path,
                    f"malformed registry URI {value!r} (expected azureml://registries/<registry>/"
                    "<components|models|environments|data>/<name>/versions/<version> or .../labels/<label>)",
                    rule="registry-uri",
                )
        elif shape.startswith("azureml://jobs/"):
            if not JOB_OUTPUT.match(shape):
                emit(
                    path,
                    f"malformed job output URI {value!r} (expected azureml://jobs/<job>/outputs/<output>)",
                    rule="job-uri",
                )
        elif shape.startswith("azureml://"):
            if not DATASTORE_PATH.match(shape):
                emit(
                    path,
                    f"malformed azureml URI {value!r} (expected azureml://registries/..., azureml://jobs/... "
                    "or azureml://datastores/<datastore>/paths/<path>)",
                    rule="uri",
                )
        elif shape.startswith("azureml:") and path and path[-1] in ASSET_KEYS and not WORKSPACE_ASSET.match(shape):
            emit(path, f"malformed asset reference {value!r} (expected azureml:<name>:<version>)", rule="asset-ref")
