"""The ground's specs: rendered from values, loaded by the pinned azure-ai-ml, valid through all four layers, and
planted mistakes in them are one error line each (layer D's immutability rules on the diff with the previous
version included)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.core.repo import REPO_ROOT
from tools.validate.rules.immutable import isolation_mode, refused_changes

PROD = REPO_ROOT / "build" / "prod"


def validate(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools", "validate", "--no-cache", *argv], cwd=REPO_ROOT,
                          capture_output=True, text=True)  # fmt: skip


def errors(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if ": " in line and " - " not in line.split(": ")[0]]


@pytest.fixture(scope="module")
def prod_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.render.engine import render

    out = tmp_path_factory.mktemp("prod")
    render("prod", REPO_ROOT, out).write()
    return out


def test_committed_specs_load_with_the_pinned_sdk(prod_render: Path) -> None:
    from azure.ai.ml import load_online_deployment, load_registry, load_workspace
    from azure.ai.ml.entities._load_functions import load_schedule

    dev = load_workspace(REPO_ROOT / "workspace" / "workspace.yml")
    assert dev.managed_network.isolation_mode == "AllowInternetOutbound"
    prod = load_workspace(prod_render / "workspace" / "workspace.yml")
    assert prod.managed_network.isolation_mode == "AllowOnlyApprovedOutbound"
    rules = {rule.name: rule.type for rule in prod.managed_network.outbound_rules}
    assert rules["registry-contoso-ml-registry"] == "PrivateEndpoint" and rules["huggingface"] == "FQDN"
    registry = load_registry(REPO_ROOT / "registry" / "registry.yml")
    assert registry.location == "eastus2" and [r.location for r in registry.replication_locations] == ["eastus2"]
    monitor = load_schedule(prod_render / "schedules" / "monitor.yml")
    assert type(monitor).__name__ == "MonitorSchedule"
    signal = monitor.create_monitor.monitoring_signals["token_statistics"]
    assert signal.type == "generation_token_statistics"
    deployment = load_online_deployment(prod_render / "endpoints" / "deployment.yml")
    assert set(deployment.data_collector.collections) == {"model_inputs", "model_outputs"}
    assert not (REPO_ROOT / "schedules").exists()  # dev: monitoring off, no schedule rendered
    assert "data_collector" not in (REPO_ROOT / "endpoints" / "deployment.yml").read_text()


def test_every_workspace_is_valid_through_all_layers_strict() -> None:
    result = validate("--all", "--strict")
    assert result.returncode == 0, result.stdout + result.stderr


PLANTS = [
    ("workspace", "description:", "descripton:", "descripton: unknown key"),
    ("workspace", "name: mlw-ultrachat-prod", "name: -bad name", "name: name '-bad name' must be 3-33"),
    ("workspace", "isolation_mode: allow_only_approved_outbound", "isolation_mode: allow_everything",
     "managed_network.isolation_mode: expected one of"),
    ("registry", "name: contoso-ml-registry", "name: x", "name: name 'x' must be 3-33"),
    ("schedule", "type: generation_token_statistics", "type: generation_token_stats", "token_statistics.type:"),
]


@pytest.mark.parametrize(("kind", "old", "new", "expected"), PLANTS, ids=[p[2] for p in PLANTS])
def test_a_planted_mistake_is_one_error_line(prod_render: Path, tmp_path: Path, kind: str, old: str, new: str,
                                            expected: str) -> None:  # fmt: skip
    source = {"workspace": "workspace/workspace.yml", "registry": "registry/registry.yml",
              "schedule": "schedules/monitor.yml"}[kind]  # fmt: skip
    text = (prod_render / source).read_text()
    assert old in text
    planted = tmp_path / Path(source).name
    planted.write_text(text.replace(old, new, 1))
    result = validate(str(planted), "--strict")
    assert result.returncode == 1
    lines = errors(result)
    assert len(lines) == 1 and expected in lines[0], result.stdout


def git(folder: Path, *argv: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *argv], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip


def test_a_region_change_on_an_existing_workspace_is_one_error_line(prod_render: Path, tmp_path: Path) -> None:
    """The previous version is the last commit's: a committed workspace spec whose region changes is refused."""
    git(tmp_path, "init", "-q")
    spec = tmp_path / "workspace.yml"
    shutil.copy(prod_render / "workspace" / "workspace.yml", spec)
    git(tmp_path, "add", "workspace.yml")
    git(tmp_path, "commit", "-qm", "the workspace as created")
    assert validate(str(spec), "--strict").returncode == 0
    spec.write_text(spec.read_text().replace("location: eastus2", "location: westus3"))
    result = validate(str(spec), "--strict")
    lines = errors(result)
    assert result.returncode == 1 and len(lines) == 1, result.stdout
    assert "location: workspace mlw-ultrachat-prod exists in eastus2: its region cannot change to westus3" in lines[0]
    assert "how-to-move-workspace" in lines[0]


def test_a_values_region_change_is_refused_on_the_in_memory_render(tmp_path: Path) -> None:
    """Changing the values and validating the workspace compares the render with the committed file on disk."""
    from tools.operate.workspace import validate_rendered
    from tools.render.engine import render

    rendered = render("dev", REPO_ROOT)
    text = rendered.file("workspace/workspace.yml").text.replace("location: eastus2", "location: westeurope")
    moved = type(rendered)(rendered.workspace, rendered.root, rendered.out_dir, rendered.values, rendered.context,
                           tuple(f if f.relpath != "workspace/workspace.yml" else type(f)(f.relpath, f.template, text)
                                 for f in rendered.files))  # fmt: skip
    _, found = validate_rendered(moved, REPO_ROOT, "D")
    assert [(f.key_path, f.rule) for f in found] == [(("location",), "workspace-immutable")]


@pytest.mark.parametrize(("before", "after", "refused"), [
    ("disabled", "allow_internet_outbound", False),
    ("allow_internet_outbound", "allow_only_approved_outbound", False),
    ("allow_internet_outbound", "disabled", True),
    ("allow_only_approved_outbound", "allow_internet_outbound", True),
    ("AllowOnlyApprovedOutbound", "disabled", True),
    ("allow_only_approved_outbound", "allow_only_approved_outbound", False),
])  # fmt: skip
def test_isolation_only_tightens(before: str, after: str, refused: bool) -> None:
    old = {"name": "ws", "location": "eastus2", "managed_network": {"isolation_mode": before}}
    new = {"name": "ws", "location": "eastus2", "managed_network": {"isolation_mode": after}}
    found = refused_changes("workspace", old, new)
    assert bool(found) is refused
    if refused:
        assert found[0].key_path == ("managed_network", "isolation_mode")
        assert "how-to-managed-network" in found[0].message


def test_registry_primary_region_is_fixed_other_regions_may_change() -> None:
    old = {"name": "reg", "location": "eastus2", "replication_locations": [{"location": "eastus2"}]}
    grown = {**old, "replication_locations": [{"location": "eastus2"}, {"location": "westus"}]}
    assert refused_changes("registry", old, grown) == []
    moved = {**old, "location": "westus", "replication_locations": [{"location": "westus"}]}
    assert [r.key_path for r in refused_changes("registry", old, moved)] == [("location",)]
    dropped = {**old, "replication_locations": [{"location": "westus"}]}
    assert [r.key_path for r in refused_changes("registry", old, dropped)] == [("replication_locations",)]


def test_another_name_is_another_resource_and_no_network_is_disabled() -> None:
    assert refused_changes("workspace", {"name": "a", "location": "eastus2"}, {"name": "b", "location": "westus"}) == []
    assert isolation_mode({}) == "disabled" and isolation_mode({"managed_network": {"isolation_mode":
                                                                                     "AllowInternetOutbound"}}) == \
        "allow_internet_outbound"  # fmt: skip
