"""Read-only access to the repo's facts in data: the registry component contract, the model catalog, the SKU
table and the spec kinds. Loaded once per process; code asks here instead of repeating a value."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "schemas" / "contracts"
CATALOG_DIR = REPO_ROOT / "schemas" / "catalog"


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@cache
def contract(name: str = "chat_completion_pipeline") -> dict[str, Any]:
    """The committed interface contract of a registry component (inputs in the component's order)."""
    return _load(CONTRACTS_DIR / f"{name}.yaml")


@cache
def contracts() -> dict[str, dict[str, Any]]:
    """Every committed registry component contract, by component name."""
    return {path.stem: contract(path.stem) for path in sorted(CONTRACTS_DIR.glob("*.yaml"))}


@cache
def sft_interface() -> dict[str, Any]:
    """Inputs and outputs of our own SFT component (components/finetune-sft/inputs.yaml)."""
    return _load(REPO_ROOT / "components" / "finetune-sft" / "inputs.yaml")


@cache
def models() -> dict[str, dict[str, Any]]:
    return _load(CATALOG_DIR / "models.yaml")["models"]


@cache
def skus() -> dict[str, dict[str, Any]]:
    return _load(CATALOG_DIR / "skus.yaml")["skus"]


@cache
def kinds_table() -> dict[str, Any]:
    return _load(REPO_ROOT / "schemas" / "kinds.yaml")


def kinds() -> dict[str, dict[str, Any]]:
    return kinds_table()["kinds"]


def schema_url(kind: str) -> str:
    return kinds_table()["schema_base_url"] + kinds()[kind]["file"]


def sku_gpus(sku: str) -> int | None:
    """GPUs per node of an Azure VM size (case-insensitive, as Azure treats SKU names); None if unknown."""
    folded = {name.lower(): facts for name, facts in skus().items()}
    facts = folded.get(sku.lower())
    return None if facts is None else int(facts.get("gpus", 0))
