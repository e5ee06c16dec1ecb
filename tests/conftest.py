"""Session-wide test settings: offline switches, temporary MLflow and Prompt flow homes, repo paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.core.offline import apply_offline_env
from tools.core.repo import REPO_ROOT

apply_offline_env()


@pytest.fixture(scope="session", autouse=True)
def _isolated_homes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep MLflow's tracking store and Prompt flow's home out of the checkout and the user's home."""
    home = tmp_path_factory.mktemp("homes")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    os.environ.setdefault("PF_HOME_DIRECTORY", str(home / "promptflow"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
