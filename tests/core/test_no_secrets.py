"""No secrets in files: every rendered spec of every workspace, and every tracked file, is free of anything
key-like. Endpoint keys come from the environment or `az` at run time only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tools.render.engine import default_out_dir, render_workspace
from tools.render.values import workspace_names

# Marker words are split so this file does not match the repo's own key grep (the before-stop hook's).
ACCOUNT_KEY = "Account" + "Key="
SAS = "SharedAccess" + "Signature="
KEY_LIKE = [
    re.compile(ACCOUNT_KEY + r"[A-Za-z0-9+/=]{20,}"),
    re.compile(SAS + r"[A-Za-z0-9%]{10,}|[?&]sig=[A-Za-z0-9%+/=]{20,}"),
    re.compile(r"Bearer\s+[A-Za-z0-9._~+/-]{20,}"),
    re.compile(
        r"(?i)(api[_-]?key|primary[_-]?key|secondary[_-]?key|client[_-]?secret|password)\s*[:=]\s*['\"]?[A-Za-z0-9+/=._~-]{16,}"
    ),
    re.compile(r"\b[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])"),  # an Azure storage account key
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # a JWT
]
SKIP_SUFFIXES = (".parquet", ".png", ".jpg", ".lock", "package-lock.json")  # lock files hold sha512 digests


def key_like(text: str) -> list[str]:
    return [match.group(0)[:40] for pattern in KEY_LIKE for match in pattern.finditer(text)]


@pytest.mark.parametrize(
    "planted",
    [
        ACCOUNT_KEY + "a" * 40,
        "Authorization: Bearer " + "x" * 32,
        "api_key: " + "Z" * 30,
        "primaryKey = '" + "k" * 24 + "'",
        "q" * 86 + "==",
        "eyJ" + "a" * 20 + "." + "b" * 20 + "." + "c" * 20,
    ],
)
def test_the_scanner_finds_planted_keys(planted: str) -> None:
    assert key_like(f"prefix\n{planted}\nsuffix")


@pytest.mark.parametrize("workspace", workspace_names())
def test_rendered_specs_hold_nothing_key_like(repo_root: Path, workspace: str) -> None:
    for item in render_workspace(workspace, default_out_dir(workspace, repo_root), repo_root):
        assert key_like(item.text) == [], item.relpath


def test_tracked_files_hold_nothing_key_like(repo_root: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=repo_root, capture_output=True, text=True, check=True).stdout
    hits = {}
    for name in files.splitlines():
        path = repo_root / name
        if name.endswith(SKIP_SUFFIXES) or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found = key_like(text)
        if found:
            hits[name] = found
    assert hits == {}
