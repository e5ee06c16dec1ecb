"""The result cache of tools.validate.runner misses on every change that could change a verdict (the spec's bytes,
a referenced local file, the SDK version, the exported schemas, the validator's code, kinds, catalog, contracts),
serves an unchanged spec without re-running its layers, and gives the same findings as the serial path."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tools.validate import layers as core
from tools.validate import runner as runner_module
from tools.validate.document import parse_spec
from tools.validate.layers import validate_specs
from tools.validate.runner import Runner, cache_key, fingerprint

COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: tiny
version: "1"
type: command
code: ./src
environment: azureml:tiny-env:1
command: python run.py --n ${{inputs.n}}
inputs:
  n: {type: integer}
"""
ENVIRONMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
name: tiny-env
version: "1"
image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04
conda_file: conda.yml
"""


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "run.py").write_text("print(1)\n")
    (tmp_path / "conda.yml").write_text("dependencies: [python=3.11]\n")
    (tmp_path / "component.yml").write_text(COMPONENT)
    (tmp_path / "env.yml").write_text(ENVIRONMENT)
    return tmp_path


def _key(path: Path, layers: str = "BC") -> str:
    spec = parse_spec(path, path.name)
    return cache_key(spec, layers)


def test_key_changes_with_the_spec_bytes(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = _key(root / "component.yml")
    assert _key(root / "component.yml") == before  # stable for the same content
    (root / "component.yml").write_text(COMPONENT.replace('version: "1"', 'version: "2"'))
    assert _key(root / "component.yml") != before


def test_key_changes_with_a_referenced_local_file(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    env_before, component_before = _key(root / "env.yml"), _key(root / "component.yml")
    (root / "conda.yml").write_text("dependencies: [python=3.12, pip]\n")  # a referenced file's bytes
    assert _key(root / "env.yml") != env_before
    (root / "src" / "more.py").write_text("x = 2\n")  # a new file below a referenced code folder
    assert _key(root / "component.yml") != component_before
    component_before = _key(root / "component.yml")
    (root / "src" / "run.py").write_text("print('a longer line')\n")  # a changed file below it
    assert _key(root / "component.yml") != component_before


def _facts(tmp_path: Path) -> tuple[SimpleNamespace, Path]:
    facts = tmp_path / "facts"
    for folder in ("azureml", "contracts", "catalog", "code"):
        (facts / folder).mkdir(parents=True)
    (facts / "kinds.yaml").write_text("a: 1\n")
    (facts / "azureml" / "model.schema.json").write_text("{}\n")
    (facts / "contracts" / "c.yaml").write_text("inputs: {}\n")
    (facts / "catalog" / "skus.yaml").write_text("skus: []\n")
    (facts / "code" / "rule.py").write_text("RULE = 1\n")
    repo = SimpleNamespace(kinds_file=facts / "kinds.yaml", json_schema_dir=facts / "azureml",
                           contracts_dir=facts / "contracts", catalog_dir=facts / "catalog")  # fmt: skip
    return repo, facts


@pytest.mark.parametrize("changed", ["kinds.yaml", "azureml/model.schema.json", "contracts/c.yaml",
                                     "catalog/skus.yaml", "code/rule.py", "code/new_rule.py",
                                     "azureml/new.schema.json"])  # fmt: skip
def test_fingerprint_changes_with_code_and_facts(tmp_path: Path, changed: str) -> None:
    repo, facts = _facts(tmp_path)
    before = fingerprint(repo, [facts / "code"], "1.35.2")
    assert fingerprint(repo, [facts / "code"], "1.35.2") == before
    target = facts / changed
    target.write_text((target.read_text() if target.exists() else "") + "# changed\n")
    assert fingerprint(repo, [facts / "code"], "1.35.2") != before


def test_fingerprint_changes_with_the_sdk_version(tmp_path: Path) -> None:
    repo, facts = _facts(tmp_path)
    assert fingerprint(repo, [facts / "code"], "1.35.2") != fingerprint(repo, [facts / "code"], "1.36.0")


def test_sdk_version_is_part_of_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    runner_module._fingerprint.cache_clear()
    before = _key(root / "component.yml")
    monkeypatch.setattr(runner_module, "_sdk_version", lambda: "0.0.0-other")
    runner_module._fingerprint.cache_clear()
    try:
        assert _key(root / "component.yml") != before
    finally:
        monkeypatch.undo()
        runner_module._fingerprint.cache_clear()


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"C": 0, "D": 0}
    layer_c, layer_d = core.layer_c, core.layer_d

    def count_c(spec):  # noqa: ANN001, ANN202
        calls["C"] += 1
        return layer_c(spec)

    def count_d(spec, context):  # noqa: ANN001, ANN202
        calls["D"] += 1
        return layer_d(spec, context)

    for module in (core, runner_module):  # the runner calls the layers by the names it imported
        monkeypatch.setattr(module, "layer_c", count_c)
        monkeypatch.setattr(module, "layer_d", count_d)
    return calls


def test_runner_serves_an_unchanged_tree_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    monkeypatch.setattr(Runner, "cache_dir", property(lambda self: tmp_path / "cache"))
    calls = _counting(monkeypatch)

    def run() -> list:
        specs = [parse_spec(root / name, name) for name in ("component.yml", "env.yml")]
        return validate_specs(specs, "ACD", runner=Runner(jobs=1)).findings

    first = run()
    assert calls == {"C": 2, "D": 2}
    assert run() == first
    assert calls == {"C": 2, "D": 2}  # nothing re-checked
    (root / "conda.yml").write_text("dependencies: [python=3.12, pip]\n")
    assert run() == first
    assert calls == {"C": 3, "D": 4}  # C again for the environment only; D again for the run (it reads across files)


def test_runner_gives_the_serial_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    (root / "bad.yml").write_text(COMPONENT.replace("n: {type: integer}", "n: {type: integer, defualt: 3}")
                                  .replace("code: ./src", "code: ./missing"))  # fmt: skip
    monkeypatch.setattr(Runner, "cache_dir", property(lambda self: tmp_path / "cache"))
    names = ("component.yml", "env.yml", "bad.yml")

    def specs() -> list:
        return [parse_spec(root / name, name) for name in names]

    serial = validate_specs(specs(), "ACD").findings
    assert any(f.path == "bad.yml" for f in serial)
    assert validate_specs(specs(), "ACD", runner=Runner(jobs=1)).findings == serial  # cold
    assert validate_specs(specs(), "ACD", runner=Runner(jobs=1)).findings == serial  # from the cache
