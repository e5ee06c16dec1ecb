"""Registry model metadata -> catalog entries: pure functions over the JSON of
`az ml model show --registry-name R --name M --version V -o json`.

What is read, and where Azure publishes it (azureml-assets #5150/#5190 moved these facts from tags into the model's
`system_metadata` in June-July 2026; `azure.ai.ml._schema.assets.model.ModelSchema` dumps it as `system_metadata`):
- `system_metadata.supportedComputes.finetuneComputes` / `.inferenceComputes`: the allow-lists, VM sizes without
  the `Standard_` prefix (we add it and use the SKU table's spelling);
- `system_metadata.deprecation.fineTuningRetirementDate` / `.inferenceRetirementDate`: retirement dates;
- `system_metadata.preview`: the preview flag;
- `tags.model_specific_defaults`: the model's own fine-tune defaults, a Python dict literal (the SDK notebooks read
  it with `ast.literal_eval`); `tags.task`, `tags.textContextWindow`;
- `stage: Archived`: an archived model (our reading of the registry's archived flag);
- `creation_context.last_modified_at`: the date of the metadata, recorded as the entry's `updated_on`.
A model is `retired` once a retirement date is on or before the import's `as_of` date. Alternatives of a retired
model are the active models of the same registry and task that can be fine-tuned.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import yaml

SHOW_COMMAND = "az ml model show --registry-name {registry} --name {name} --version {version} -o json"
REGISTRY_ID = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$"
)
MAX_DEFAULTS_CHARS = 20_000  # a model_specific_defaults literal longer than this is not metadata


class MetadataError(ValueError):
    """One defect of a registry metadata document: the key path and what was expected."""

    def __init__(self, key_path: str, message: str) -> None:
        super().__init__(f"{key_path}: {message}")
        self.key_path = key_path
        self.message = message


@dataclass(frozen=True)
class RegistryModel:
    """The facts of one registry model version that the catalog keeps."""

    registry: str
    name: str
    version: str
    task: str | None
    preview: bool
    archived: bool
    finetune_skus: list[str]
    inference_skus: list[str]
    finetune_retired_on: str | None
    inference_retired_on: str | None
    finetune_defaults: dict[str, Any]
    context_window: int | None
    updated_on: str | None

    @property
    def source(self) -> str:
        return SHOW_COMMAND.format(registry=self.registry, name=self.name, version=self.version)


def _get(document: dict[str, Any], *keys: str) -> Any:
    node: Any = document
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _date(value: Any, key_path: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MetadataError(key_path, f"expected a date string (YYYY-MM-DD or ISO 8601), got {value!r}")
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise MetadataError(key_path, f"expected a date (YYYY-MM-DD or ISO 8601), got {value!r}") from None


def canonical_sku(name: str, known: dict[str, str]) -> str:
    """`NC24ads_A100_v4` -> `Standard_NC24ads_A100_v4`, spelled as the SKU table spells it (Azure folds case)."""
    full = name if name.lower().startswith("standard_") else f"Standard_{name}"
    return known.get(full.lower(), full)


def _skus(document: dict[str, Any], key: str, known: dict[str, str]) -> list[str]:
    value = _get(document, "system_metadata", "supportedComputes", key)
    key_path = f"system_metadata.supportedComputes.{key}"
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise MetadataError(key_path, f"expected a list of VM size names, got {value!r}")
    return list(dict.fromkeys(canonical_sku(item.strip(), known) for item in value))


def _defaults(document: dict[str, Any]) -> dict[str, Any]:
    raw = _get(document, "tags", "model_specific_defaults")
    key_path = "tags.model_specific_defaults"
    if raw is None:
        return {}
    if isinstance(raw, str):
        if len(raw) > MAX_DEFAULTS_CHARS:
            raise MetadataError(key_path, f"longer than {MAX_DEFAULTS_CHARS} characters")
        text = raw.strip()
        match = re.fullmatch(r"ordereddict\((.*)\)", text, re.DOTALL)  # some specs wrap the dict
        try:
            raw = ast.literal_eval(match.group(1) if match else text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise MetadataError(key_path, "expected a dict literal such as {'apply_lora': 'true'}") from None
    if not isinstance(raw, dict) or not all(isinstance(key, str) for key in raw):
        raise MetadataError(key_path, f"expected a mapping of input names to values, got {type(raw).__name__}")
    for key, value in raw.items():
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise MetadataError(f"{key_path}.{key}", f"expected a string or a number, got {value!r}")
    return dict(raw)


def parse_model(document: Any, known_skus: dict[str, str]) -> RegistryModel:
    """One `az ml model show -o json` document -> its catalog facts. Raises MetadataError on a malformed one."""
    if not isinstance(document, dict):
        raise MetadataError("(top level)", f"expected the JSON object of one model, got {type(document).__name__}")
    identity = document.get("id")
    match = REGISTRY_ID.match(identity) if isinstance(identity, str) else None
    if not match:
        raise MetadataError(
            "id", f"expected azureml://registries/<registry>/models/<name>/versions/<v>, got {identity!r}"
        )
    for key in ("name", "version"):
        if str(document.get(key)) != match[key]:
            raise MetadataError(key, f"{document.get(key)!r} does not match the id {identity}")
    system = document.get("system_metadata")
    if system is not None and not isinstance(system, dict):
        raise MetadataError("system_metadata", f"expected a mapping, got {type(system).__name__}")
    preview = _get(document, "system_metadata", "preview")
    if preview is not None and not isinstance(preview, bool):
        raise MetadataError("system_metadata.preview", f"expected true or false, got {preview!r}")
    window = _get(document, "tags", "textContextWindow")
    if window is not None and not str(window).isdigit():
        raise MetadataError("tags.textContextWindow", f"expected a number of tokens, got {window!r}")
    task = _get(document, "tags", "task")
    return RegistryModel(
        registry=match["registry"],
        name=match["name"],
        version=match["version"],
        task=task if isinstance(task, str) else None,
        preview=bool(preview),
        archived=str(document.get("stage") or "").lower() == "archived",
        finetune_skus=_skus(document, "finetuneComputes", known_skus),
        inference_skus=_skus(document, "inferenceComputes", known_skus),
        finetune_retired_on=_date(
            _get(document, "system_metadata", "deprecation", "fineTuningRetirementDate"),
            "system_metadata.deprecation.fineTuningRetirementDate",
        ),
        inference_retired_on=_date(
            _get(document, "system_metadata", "deprecation", "inferenceRetirementDate"),
            "system_metadata.deprecation.inferenceRetirementDate",
        ),
        finetune_defaults=_defaults(document),
        context_window=int(window) if window is not None else None,
        updated_on=_date(_get(document, "creation_context", "last_modified_at"), "creation_context.last_modified_at"),
    )


def _retirement(model: RegistryModel, as_of: dt.date) -> tuple[str | None, str | None]:
    """(date the model counts as retired, note) when a retirement date has passed, else (None, None)."""
    dates = {"fine-tuning": model.finetune_retired_on, "inference": model.inference_retired_on}
    passed = {what: day for what, day in dates.items() if day and dt.date.fromisoformat(day) <= as_of}
    if not passed:
        return None, None
    if len(set(passed.values())) == 1 and len(passed) == 2:
        what = f"fine-tuning and inference retired on {next(iter(passed.values()))}"
    else:
        what = "; ".join(f"{kind} retired on {day}" for kind, day in passed.items())
    note = f"archived; {what}" if model.archived else what
    return min(passed.values()), note


def build_catalog(models: list[RegistryModel], as_of: dt.date) -> dict[str, dict[str, Any]]:
    """Catalog entries by model name (the keys every reader uses), in name order."""
    seen: dict[str, RegistryModel] = {}
    for model in models:
        other = seen.get(model.name)
        if other and other.registry != model.registry:
            raise MetadataError("name", f"{model.name} is in two registries ({other.registry}, {model.registry})")
        if other and other.version != model.version:
            raise MetadataError("version", f"{model.name}: two versions given ({other.version}, {model.version})")
        seen[model.name] = model
    retired = {name: _retirement(model, as_of) for name, model in seen.items()}
    catalog: dict[str, dict[str, Any]] = {}
    for name in sorted(seen, key=str.lower):
        model = seen[name]
        retired_on, note = retired[name]
        alternatives = (
            sorted(
                (
                    other.name
                    for other in seen.values()
                    if other.name != name
                    and retired[other.name][0] is None
                    and other.registry == model.registry
                    and other.task == model.task
                    and other.finetune_skus
                ),
                key=str.lower,
            )
            if retired_on
            else []
        )
        entry: dict[str, Any] = {
            "registry": model.registry,
            "latest_version": int(model.version) if model.version.isdigit() else model.version,
            "task": model.task,
            "status": "retired" if retired_on else "active",
        }
        if retired_on:
            entry["retired_on"] = retired_on
            entry["retired_note"] = note
        for key, day in (
            ("finetune_retired_on", model.finetune_retired_on),
            ("inference_retired_on", model.inference_retired_on),
        ):
            if day:
                entry[key] = day
        entry.update(
            {
                "preview": model.preview,
                "alternatives": alternatives,
                "finetune_skus": model.finetune_skus,
                "inference_skus": model.inference_skus,
                "finetune_defaults": model.finetune_defaults,
            }
        )
        if model.context_window is not None:
            entry["context_window"] = model.context_window
        entry["source"] = model.source
        entry["updated_on"] = model.updated_on
        catalog[name] = entry
    return catalog


HEADER = """\
# Generated by `python -m tools catalog import` from the registry's own model metadata: do not edit by hand.
# Each entry comes from `source` (the JSON of that `az ml model show` command; the committed copies are
# tests/catalog/fixtures/*.json) and carries `updated_on`, the date of that metadata. Regenerate with
#   python -m tools catalog import tests/catalog/fixtures/*.json          (the committed metadata)
#   python -m tools catalog import --from-az                               (live, after `az login`)
# Readers: layer D (allow-lists, retired models and their alternatives), the renderer (`finetune_defaults` merged
# under the workspace's own `finetune` values; keys that are not component inputs are dropped and named).
"""


def dump_catalog(catalog: dict[str, dict[str, Any]]) -> str:
    """The catalog file's text: deterministic byte for byte (insertion order, flow-style SKU lists)."""

    class Dumper(yaml.SafeDumper):
        pass

    def represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)

    Dumper.add_representer(list, represent_list)
    body = yaml.dump({"models": catalog}, Dumper=Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return HEADER + body
