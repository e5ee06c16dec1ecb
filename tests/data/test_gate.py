"""The gate set: ``data prepare --gate-size`` holds part of each test output out, seeded, disjoint from validation
and training, with its role, sha256 and row count in the manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def _prepare(cli, kit, tmp_path: Path, *extra: str):  # noqa: ANN001, ANN202
    folder = kit.write_hub(tmp_path / "hub", {"train_sft": [kit.row(f"a{i}") for i in range(40)],
                                              "test_sft": [kit.row(f"b{i}") for i in range(20)]})  # fmt: skip
    out = tmp_path / "out"
    return cli("prepare", "--source", str(folder), "--out", str(out), "--no-progress", *extra), out


def test_percent_mode_holds_a_seeded_gate_set_out_of_the_test_split(cli, kit, tmp_path: Path) -> None:
    result, out = _prepare(cli, kit, tmp_path, "--splits", "train_sft,test_sft", "--percent", "100",
                           "--gate-size", "0.4")  # fmt: skip
    assert result.code == 0, result.err
    train, val, gate = (kit.read_jsonl(out / f"{name}.jsonl") for name in ("train_sft", "test_sft", "gate_sft"))
    assert (len(train), len(val), len(gate)) == (40, 12, 8)
    ids = [{r["prompt_id"] for r in rows} for rows in (train, val, gate)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["outputs"]["gate_sft"]
    assert entry["role"] == "gate" and entry["written"] == 8
    assert entry["sha256"] == hashlib.sha256((out / "gate_sft.jsonl").read_bytes()).hexdigest()
    assert [manifest["outputs"][n]["role"] for n in ("train_sft", "test_sft")] == ["training", "validation"]
    assert manifest["gate_size"] == 0.4
    again, out2 = _prepare(cli, kit, tmp_path / "again", "--splits", "train_sft,test_sft", "--percent", "100",
                           "--gate-size", "0.4")  # fmt: skip
    assert again.code == 0 and (out2 / "gate_sft.jsonl").read_bytes() == (out / "gate_sft.jsonl").read_bytes()


def test_slice_mode_writes_three_disjoint_files(cli, kit, tmp_path: Path) -> None:
    result, out = _prepare(cli, kit, tmp_path, "--split", "train_sft[:30]", "--test-size", "10", "--gate-size", "4")
    assert result.code == 0, result.err
    rows = {name: kit.read_jsonl(out / f"{name}.jsonl") for name in ("train_sft", "test_sft", "gate_sft")}
    assert [len(r) for r in rows.values()] == [20, 6, 4]
    assert len({r["prompt_id"] for part in rows.values() for r in part}) == 30


def test_a_gate_that_leaves_no_validation_rows_is_one_line(cli, kit, tmp_path: Path) -> None:
    result, _ = _prepare(cli, kit, tmp_path, "--splits", "train_sft,test_sft", "--percent", "100", "--gate-size", "20")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "--gate-size 20: leaves no validation rows" in result.err


def test_bundled_sample_has_the_three_roles() -> None:
    from tools.core.repo import REPO_ROOT

    manifest = json.loads((REPO_ROOT / "data/sample/manifest.json").read_text())
    roles = {name: entry["role"] for name, entry in manifest["outputs"].items()}
    assert roles == {"train_sft": "training", "test_sft": "validation", "gate_sft": "gate"}
    gate = REPO_ROOT / "data/sample/gate_sft.jsonl"
    assert manifest["outputs"]["gate_sft"]["sha256"] == hashlib.sha256(gate.read_bytes()).hexdigest()
