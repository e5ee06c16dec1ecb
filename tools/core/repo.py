"""The repo's facts in data, read from one root: the registry component contracts, the model catalog, the SKU table,
the spec kinds, the validation rule ids, the values schema and the exported JSON schemas.

``Repo(root)`` owns every path below a root and caches what it reads. One repo is *active* per process: this
checkout by default, or the one a command's ``--root DIR`` selects (``select``). Code asks the active repo (or the
module functions below, which do) instead of building paths or repeating a value, so whatever selects a root
reads everything from that root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.yamlio import YamlProblem, load_file, plain

REPO_ROOT = Path(__file__).resolve().parents[2]  # this checkout: the default root


def _load(path: Path) -> Any:
    """A fact file through the bounded YAML reader; a malformed one is one line naming the file and line."""
    try:
        return plain(load_file(path))
    except YamlProblem as problem:
        raise UserError(f"{path}:{problem.line}: {problem.message}") from None


@dataclass(frozen=True)
class Repo:
    """Every path below ``root`` and the cached facts read from it."""

    root: Path
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # paths -------------------------------------------------------------------------------------------------
    @property
    def schemas_dir(self) -> Path:
        return self.root / "schemas"

    @property
    def contracts_dir(self) -> Path:
        return self.schemas_dir / "contracts"

    @property
    def catalog_dir(self) -> Path:
        return self.schemas_dir / "catalog"

    @property
    def json_schema_dir(self) -> Path:
        """Schemas exported from the pinned azure-ai-ml (``make schemas``)."""
        return self.schemas_dir / "azureml"

    @property
    def kinds_file(self) -> Path:
        return self.schemas_dir / "kinds.yaml"

    @property
    def rules_file(self) -> Path:
        """Every validation rule id: layer, summary, help URL (SARIF, docs/rules.md)."""
        return self.schemas_dir / "rules.yaml"

    @property
    def values_schema_file(self) -> Path:
        return self.schemas_dir / "values.schema.json"

    @property
    def workspaces_dir(self) -> Path:
        return self.root / "workspaces"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def runs_dir(self) -> Path:
        return self.root / ".runs"

    @property
    def demo_run_dir(self) -> Path:
        """What `make demo` leaves: the tiny model, the fine-tuned MLflow model, the sample request."""
        return self.runs_dir / "demo"

    @property
    def chat_flow_dir(self) -> Path:
        """The Prompt flow chat that calls the endpoint."""
        return self.root / "flows" / "chat"

    @property
    def sft_script(self) -> Path:
        """Our SFT component's self-contained training script."""
        return self.root / "components" / "finetune-sft" / "src" / "fine_tune.py"

    def relative(self, path: Path) -> str:
        """``path`` relative to the root when it is below it, else as given (for one-line messages)."""
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    # facts ---------------------------------------------------------------------------------------------------
    def _cached(self, key: str, path: Path) -> Any:
        if key not in self._cache:
            self._cache[key] = _load(path)
        return self._cache[key]

    def contract(self, name: str = "chat_completion_pipeline") -> dict[str, Any]:
        """The committed interface contract of a registry component (inputs in the component's order)."""
        return self._cached(f"contract:{name}", self.contracts_dir / f"{name}.yaml")

    def contracts(self) -> dict[str, dict[str, Any]]:
        """Every committed registry component contract, by component name."""
        return {path.stem: self.contract(path.stem) for path in sorted(self.contracts_dir.glob("*.yaml"))}

    def sft_interface(self) -> dict[str, Any]:
        """Inputs and outputs of our own SFT component (components/finetune-sft/inputs.yaml)."""
        return self._cached("sft", self.root / "components" / "finetune-sft" / "inputs.yaml")

    def models(self) -> dict[str, dict[str, Any]]:
        return self._cached("models", self.catalog_dir / "models.yaml")["models"]

    def skus(self) -> dict[str, dict[str, Any]]:
        return self._cached("skus", self.catalog_dir / "skus.yaml")["skus"]

    def kinds_table(self) -> dict[str, Any]:
        return self._cached("kinds", self.kinds_file)

    def kinds(self) -> dict[str, dict[str, Any]]:
        return self.kinds_table()["kinds"]

    def schema_url(self, kind: str) -> str:
        return self.kinds_table()["schema_base_url"] + self.kinds()[kind]["file"]

    def unpublished_types(self) -> tuple[str, ...]:
        """The ``type:`` values of kinds Azure publishes no schema for (a fine-tuning job has no `$schema` line)."""
        if "unpublished" not in self._cache:
            self._cache["unpublished"] = tuple(t for facts in self.kinds().values() if facts.get("published") is False
                                               for t in facts.get("types") or [])  # fmt: skip
        return self._cache["unpublished"]

    def is_spec_text(self, text: str) -> bool:
        """Whether a YAML text is an Azure ML spec: it has a `$schema` line, or a top-level `type:` of a kind Azure
        publishes no schema for. The one test of which files are specs (validate's folders, a workspace's render,
        operate's plan, the demo)."""
        if "$schema:" in text:
            return True
        types = self.unpublished_types()
        return any(line.split("#", 1)[0].strip().removeprefix("type:").strip().strip("'\"").lower() in types
                   for line in text.splitlines() if line.startswith("type:"))  # fmt: skip

    def rules_table(self) -> dict[str, Any]:
        return self._cached("rules", self.rules_file)

    def sku(self, name: str) -> dict[str, Any] | None:
        """The SKU table's facts of an Azure VM size (case-insensitive, as Azure treats SKU names)."""
        folded = self._cache.get("skus-folded")
        if folded is None:
            folded = self._cache["skus-folded"] = {key.lower(): facts for key, facts in self.skus().items()}
        return folded.get(str(name).lower())

    def sku_gpus(self, name: str) -> int | None:
        """GPUs per node of an Azure VM size; None if unknown."""
        facts = self.sku(name)
        return None if facts is None else int(facts.get("gpus", 0))


_active: list[Repo] = [Repo(REPO_ROOT)]


def active() -> Repo:
    """The repo this process reads its facts from."""
    return _active[0]


def select(root: Path | str | None) -> Repo:
    """Make ``root`` the active repo (``None``: this checkout) and return it."""
    chosen = Path(root).resolve() if root is not None else REPO_ROOT
    if chosen != _active[0].root:
        _active[0] = Repo(chosen)
    return _active[0]


# Module-level shorthands for the active repo's facts.
def contract(name: str = "chat_completion_pipeline") -> dict[str, Any]:
    return active().contract(name)


def contracts() -> dict[str, dict[str, Any]]:
    return active().contracts()


def sft_interface() -> dict[str, Any]:
    return active().sft_interface()


def models() -> dict[str, dict[str, Any]]:
    return active().models()


def skus() -> dict[str, dict[str, Any]]:
    return active().skus()


def kinds_table() -> dict[str, Any]:
    return active().kinds_table()


def kinds() -> dict[str, dict[str, Any]]:
    return active().kinds()


def schema_url(kind: str) -> str:
    return active().schema_url(kind)


def is_spec_text(text: str) -> bool:
    return active().is_spec_text(text)


def sku_gpus(sku: str) -> int | None:
    return active().sku_gpus(sku)
