"""The fuzz suite's shared pieces: the seeded generator and bounded child (``hostile.py``, also loaded by
``benchmarks/fuzz.py``) handed to tests as the ``hostile`` fixture, and a scratch copy of the repo's data files."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tools.core.repo import REPO_ROOT

# what a --root copy needs to render and plan a workspace (code, tests and build output stay behind)
ROOT_PARTS = ("schemas", "templates", "workspaces", "components", "environments", "jobs", "compute", "endpoints",
              "models", "flows", "data", "pf.yaml")  # fmt: skip


def load_hostile() -> ModuleType:
    if "fuzz_hostile" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fuzz_hostile", Path(__file__).with_name("hostile.py"))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["fuzz_hostile"] = module
        spec.loader.exec_module(module)
    return sys.modules["fuzz_hostile"]


@pytest.fixture(scope="session")
def hostile() -> ModuleType:
    return load_hostile()


def copy_root(target: Path) -> Path:
    for name in ROOT_PARTS:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("prepared", "__pycache__"))
        elif source.is_file():
            shutil.copy2(source, target / name)
    return target


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    return copy_root(tmp_path / "root")
