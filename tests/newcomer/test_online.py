"""Going online is one option (`--online`), named in the offline message; with it, `data prepare` really asks the
hub: here a local stand-in on 127.0.0.1 (tests/newcomer/hub_standin.py, HF_ENDPOINT). The test session itself stays
offline (tests/conftest.py), and so does every command without the option."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.newcomer.hub_standin import HubStandIn
from tools.core import offline
from tools.core.repo import REPO_ROOT

REPO_ID = "someone/ultrachat-like"


@pytest.fixture()
def hub() -> Iterator[HubStandIn]:
    server = HubStandIn(REPO_ROOT / "data" / "hub-sample", REPO_ID)
    try:
        yield server
    finally:
        server.close()


def prepare(hub: HubStandIn, out: Path, *extra: str) -> subprocess.CompletedProcess:
    # the session's offline switches (HF_HUB_OFFLINE=1 ...) are inherited: --online must win over them
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(out.parent / "hf-home")}
    assert offline.hub_offline(env)
    command = [sys.executable, "-m", "tools", "data", "prepare", "--source", REPO_ID, "--splits", "train_sft,test_sft",
               "--percent", "100", "--out", str(out), "--no-progress", *extra]  # fmt: skip
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_online_prepare_downloads_from_the_hub(hub: HubStandIn, tmp_path: Path) -> None:
    done = prepare(hub, tmp_path / "out", "--online")
    assert done.returncode == 0, done.stderr
    asked = "\n".join(hub.requests)
    assert f"/datasets/{REPO_ID}/resolve/main/README.md" in asked
    assert f"/datasets/{REPO_ID}/resolve/" in asked and "train_sft-00000-of-00001.parquet" in asked
    # the hub's copy of the bundled sample prepares into exactly the committed preparation
    for split in ("train_sft", "test_sft"):
        assert (tmp_path / "out" / f"{split}.jsonl").read_bytes() == (REPO_ROOT / "data/sample" / f"{split}.jsonl"
                                                                      ).read_bytes()  # fmt: skip
    assert f"prepared {tmp_path / 'out'} from {REPO_ID}" in done.stdout


def test_without_online_nothing_is_asked_and_the_message_names_the_option(hub: HubStandIn, tmp_path: Path) -> None:
    done = prepare(hub, tmp_path / "out")
    assert done.returncode == 2
    assert hub.requests == []
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "offline mode is on" in done.stderr and offline.ONLINE_OPTION in done.stderr, done.stderr


def test_online_is_in_the_help_of_the_command_that_fetches() -> None:
    done = subprocess.run([sys.executable, "-m", "tools", "data", "prepare", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0 and "--online" in done.stdout


def test_go_online_overrides_the_switches_and_leaves_telemetry_off() -> None:
    env = offline.apply_offline_env({})
    assert offline.hub_offline(env)
    offline.go_online(env)
    assert not offline.hub_offline(env)
    assert {key: env[key] for key in offline.HUB_SWITCHES} == dict.fromkeys(offline.HUB_SWITCHES, "0")
    assert env["HF_HUB_DISABLE_TELEMETRY"] == "1"
    # a switch the user set explicitly wins over the default
    assert offline.apply_offline_env({"HF_HUB_OFFLINE": "0"})["HF_HUB_OFFLINE"] == "0"


def test_going_online_after_a_hub_library_was_imported_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", sys.modules.get("huggingface_hub") or object())
    with pytest.raises(RuntimeError, match="huggingface_hub"):
        offline.go_online()
