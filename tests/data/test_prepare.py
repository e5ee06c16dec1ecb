"""``python -m tools data prepare`` end to end through the real ``datasets.load_dataset`` on local data."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.core.repo import REPO_ROOT as REPO  # noqa: E402


def _bad_rows(kit) -> list[tuple[dict, str]]:  # noqa: ANN001
    """One planted row per reason the parquet schema can express, with the reason expected."""
    good = kit.row

    def with_messages(key: str, messages: list | None) -> dict:
        r = good(key)
        r["messages"] = messages
        return r

    dup = good("dup-source")
    missing_id = good("no-id")
    missing_id["prompt_id"] = None
    blank_id = good("blank-id")
    blank_id["prompt_id"] = "  "
    u, a = "user", "assistant"
    return [
        (missing_id, "missing-prompt-id"),
        (blank_id, "missing-prompt-id"),
        (with_messages("null-messages", None), "messages-not-list"),
        (with_messages("empty", []), "messages-empty"),
        (with_messages("null-item", [None, {"content": "x", "role": a}]), "bad-message"),
        (with_messages("role", [{"content": "x", "role": "bot"}, {"content": "y", "role": a}]), "bad-role"),
        (with_messages("blank", [{"content": "x", "role": u}, {"content": " \n", "role": a}]), "empty-content"),
        (with_messages("null-content", [{"content": None, "role": u}, {"content": "y", "role": a}]), "empty-content"),
        (
            with_messages("two-users", [{"content": "x", "role": u}, {"content": "y", "role": u}]),
            "roles-not-alternating",
        ),
        (
            with_messages(
                "starts-assistant",
                [{"content": "x", "role": a}, {"content": "y", "role": u}, {"content": "z", "role": a}],
            ),
            "roles-not-alternating",
        ),
        (
            with_messages(
                "late-system",
                [{"content": "x", "role": u}, {"content": "s", "role": "system"}, {"content": "y", "role": a}],
            ),
            "roles-not-alternating",
        ),
        (
            with_messages(
                "ends-user", [{"content": "x", "role": u}, {"content": "y", "role": a}, {"content": "z", "role": u}]
            ),
            "no-final-assistant",
        ),
        (dict(dup, prompt="again"), "duplicate-prompt-id"),
    ], dup


@pytest.fixture
def planted(tmp_path: Path, kit):  # noqa: ANN001, ANN201
    """train_sft: 60 good rows (some with a system turn) + one bad row per reason; test_sft: 20 good rows."""
    bad, dup = _bad_rows(kit)
    train = [kit.row(f"t{i}", exchanges=1 + i % 3, system=i % 7 == 0) for i in range(60)]
    train.insert(5, dup)
    for offset, (bad_row, _) in enumerate(bad):
        train.insert(10 + 3 * offset, bad_row)
    test = [kit.row(f"e{i}") for i in range(20)]
    folder = kit.write_hub(tmp_path / "hub", {"train_sft": train, "test_sft": test}, row_group_size=17)
    return folder, train, test, bad


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


# --------------------------------------------------------------------------------------------- acceptance


@pytest.mark.parametrize("fast", [True, False], ids=["arrow-path", "row-path"])
def test_planted_bad_rows_are_skipped_reported_and_counted(planted, kit, cli, tmp_path: Path, fast: bool) -> None:
    folder, train, test, bad = planted
    reasons = [reason for _, reason in bad]
    out = tmp_path / "out"
    args = ["prepare", "--source", str(folder), "--splits", "train_sft,test_sft", "--percent", "100", "--out", str(out)]
    result = cli(*args, *([] if fast else ["--no-fast"]))
    assert result.code == 0, result.err
    written = kit.read_jsonl(out / "train_sft.jsonl")
    assert len(written) == 61 and len(kit.read_jsonl(out / "test_sft.jsonl")) == 20
    planted_rows = [r for r, _ in bad]
    good = [r for r in train if not any(r is p for p in planted_rows)]
    assert written == good  # exactly the good rows, in source order, as {prompt, prompt_id, messages}
    manifest = _manifest(out)
    entry = manifest["outputs"]["train_sft"]
    assert entry["selected"] == len(train) == entry["written"] + sum(entry["skipped"].values())
    expected: dict[str, int] = {}
    for reason in reasons:
        expected[reason] = expected.get(reason, 0) + 1
    assert entry["skipped"] == expected
    assert manifest["skipped_total"] == len(reasons)
    issues = kit.read_jsonl(out / "issues.jsonl")
    assert [i["reason"] for i in issues] == reasons
    assert all(i["split"] == "train_sft" and i["action"] == "skipped" for i in issues)
    assert [i["row"] for i in issues] == [train.index(p) for p in planted_rows]  # 0-based source row numbers
    for reason in set(reasons):
        assert reason in result.err
    assert f"{len(reasons)} row issue(s) in total" in result.err
    assert "train_sft.jsonl" in result.out and "turns min/med/p95/max" in result.out
    import hashlib

    assert entry["sha256"] == hashlib.sha256((out / "train_sft.jsonl").read_bytes()).hexdigest()


def test_arrow_and_row_paths_write_identical_bytes(planted, cli, tmp_path: Path) -> None:
    folder, *_ = planted
    outs = []
    for flag in ([], ["--no-fast"]):
        out = tmp_path / f"out{len(outs)}"
        assert (
            cli(
                "prepare",
                "--source",
                str(folder),
                "--percent",
                "40",
                "--splits",
                "train_sft,test_sft",
                "--out",
                str(out),
                *flag,
            ).code
            == 0
        )
        outs.append(out)
    for name in ("train_sft.jsonl", "test_sft.jsonl", "manifest.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_on_bad_row_fail_stops_with_one_line_and_writes_nothing(planted, cli, tmp_path: Path) -> None:
    folder, *_ = planted
    out = tmp_path / "out"
    result = cli(
        "prepare",
        "--source",
        str(folder),
        "--splits",
        "train_sft",
        "--percent",
        "100",
        "--out",
        str(out),
        "--on-bad-row",
        "fail",
    )
    assert result.code == 1
    assert result.err.count("\n") == 1 and "train_sft row 10: missing-prompt-id" in result.err
    assert not list(out.glob("*.jsonl")) and not list(out.glob(".*.tmp"))


# --------------------------------------------------------------------------------------------- modes


def test_percent_mode_is_seeded_and_deterministic(tmp_path: Path, kit, cli) -> None:
    folder = kit.write_hub(
        tmp_path / "hub",
        {"train_sft": [kit.row(f"a{i}") for i in range(200)], "test_sft": [kit.row(f"b{i}") for i in range(40)]},
    )
    runs = {}
    for name, seed in (("one", "1"), ("again", "1"), ("other", "2")):
        out = tmp_path / name
        result = cli(
            "prepare",
            "--source",
            str(folder),
            "--splits",
            "train_sft,test_sft",
            "--percent",
            "5",
            "--seed",
            seed,
            "--out",
            str(out),
        )
        assert result.code == 0, result.err
        runs[name] = out
    for file in ("train_sft.jsonl", "test_sft.jsonl", "manifest.json"):
        assert (runs["one"] / file).read_bytes() == (runs["again"] / file).read_bytes()
    assert (runs["one"] / "train_sft.jsonl").read_bytes() != (runs["other"] / "train_sft.jsonl").read_bytes()
    manifest = _manifest(runs["one"])
    assert manifest["outputs"]["train_sft"]["written"] == 10 and manifest["outputs"]["test_sft"]["written"] == 2
    assert manifest["outputs"]["train_sft"]["source_rows"] == 200
    rows = kit.read_jsonl(runs["one"] / "train_sft.jsonl")
    order = [int(r["prompt"].split(":")[0].split("a")[1]) for r in rows]
    assert order == sorted(order)  # a sample in source order
    assert str(tmp_path) not in (runs["one"] / "manifest.json").read_text().replace(str(folder), "")


def test_slice_mode_matches_datasets_split_syntax(tmp_path: Path, kit, cli) -> None:
    from datasets import load_dataset

    folder = kit.write_hub(tmp_path / "hub", {"train_sft": [kit.row(f"a{i}") for i in range(203)]})
    out = tmp_path / "out"
    result = cli(
        "prepare", "--source", str(folder), "--split", "train_sft[:10%]", "--test-size", "0.2", "--out", str(out)
    )
    assert result.code == 0, result.err
    train, test = kit.read_jsonl(out / "train_sft.jsonl"), kit.read_jsonl(out / "test_sft.jsonl")
    expected = load_dataset(str(folder), split="train_sft[:10%]")["prompt_id"]  # 20 rows (round(20.3))
    assert len(test) == 4 and len(train) == 16  # ceil(0.2 * 20)
    assert sorted(r["prompt_id"] for r in train + test) == sorted(expected)
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in test}
    manifest = _manifest(out)
    assert manifest["mode"] == "slice" and manifest["split"] == "train_sft[:10%]"
    assert manifest["outputs"]["test_sft"]["leakage"]["rows"] == 0
    # absolute bounds, a row count as test size
    out2 = tmp_path / "out2"
    assert (
        cli(
            "prepare", "--source", str(folder), "--split", "train_sft[100:130]", "--test-size", "5", "--out", str(out2)
        ).code
        == 0
    )
    ids = [r["prompt_id"] for r in kit.read_jsonl(out2 / "train_sft.jsonl") + kit.read_jsonl(out2 / "test_sft.jsonl")]
    assert sorted(ids) == sorted(load_dataset(str(folder), split="train_sft[100:130]")["prompt_id"])
    assert _manifest(out2)["outputs"]["test_sft"]["written"] == 5


def test_plain_jsonl_folder_and_parquet_file_sources(tmp_path: Path, kit, cli) -> None:
    files = tmp_path / "files"
    kit.write_jsonl(files / "train_sft.jsonl", [kit.row(f"a{i}") for i in range(12)])
    kit.write_jsonl(files / "test_sft.jsonl", [kit.row(f"b{i}") for i in range(4)])
    out = tmp_path / "out"
    result = cli(
        "prepare", "--source", str(files), "--splits", "train_sft,test_sft", "--percent", "50", "--out", str(out)
    )
    assert result.code == 0, result.err
    assert _manifest(out)["source_kind"] == "json"
    assert _manifest(out)["outputs"]["train_sft"]["written"] == 6
    hub = kit.write_hub(tmp_path / "hub", {"train_sft": [kit.row(f"c{i}") for i in range(8)]})
    single = hub / "data" / "train_sft-00000-of-00001.parquet"
    assert (
        cli(
            "prepare",
            "--source",
            str(single),
            "--splits",
            "train_sft",
            "--percent",
            "100",
            "--out",
            str(tmp_path / "o2"),
        ).code
        == 0
    )
    assert _manifest(tmp_path / "o2")["outputs"]["train_sft"]["written"] == 8


def test_json_source_with_mixed_types_goes_through_the_row_checks(tmp_path: Path, kit, cli) -> None:
    good = kit.row("ok")
    rows = [
        good,
        {"prompt": "b", "prompt_id": "id-b", "messages": "oops"},
        {"prompt": "c", "prompt_id": "id-c", "messages": [{"role": "user", "content": 5}]},
        {"prompt": "d", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
    ]
    kit.write_jsonl(tmp_path / "src" / "train_sft.jsonl", rows)
    out = tmp_path / "out"
    result = cli(
        "prepare", "--source", str(tmp_path / "src"), "--splits", "train_sft", "--percent", "100", "--out", str(out)
    )
    assert result.code == 0, result.err
    assert [r["prompt_id"] for r in kit.read_jsonl(out / "train_sft.jsonl")] == [good["prompt_id"]]
    reasons = [i["reason"] for i in kit.read_jsonl(out / "issues.jsonl")]
    assert reasons == ["messages-not-list", "empty-content", "missing-prompt-id"]


def test_leakage_is_reported_dropped_or_fatal(tmp_path: Path, kit, cli) -> None:
    train = [kit.row(f"a{i}") for i in range(10)]
    test = [kit.row(f"b{i}") for i in range(5)] + [dict(train[3])]
    folder = kit.write_hub(tmp_path / "hub", {"test_sft": test, "train_sft": train})
    base = ["prepare", "--source", str(folder), "--splits", "test_sft,train_sft", "--percent", "100"]
    result = cli(*base, "--out", str(tmp_path / "r"))
    assert result.code == 0 and "leaked-from-train" in result.err
    manifest = _manifest(tmp_path / "r")
    assert manifest["outputs"]["test_sft"]["leakage"] == {"checked_against": "train_sft", "rows": 1, "action": "report"}
    assert manifest["outputs"]["test_sft"]["written"] == 6  # reported, kept
    assert kit.read_jsonl(tmp_path / "r" / "issues.jsonl")[0]["action"] == "kept"
    result = cli(*base, "--out", str(tmp_path / "d"), "--on-leak", "drop")
    assert _manifest(tmp_path / "d")["outputs"]["test_sft"]["skipped"] == {"leaked-from-train": 1}
    result = cli(*base, "--out", str(tmp_path / "f"), "--on-leak", "fail")
    assert result.code == 1 and "leaked-from-train" in result.err and not (tmp_path / "f" / "test_sft.jsonl").exists()


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "no/such/folder/here"], "--source no/such/folder/here"),
        (["--source", "./missing"], "no such file or folder"),
        (["--split", "train_sft[:1%"], "--split"),
        (["--split", "train_sft[:150%]"], "more than 100%"),
        (["--percent", "0"], "out of range"),
        (["--percent", "150"], "out of range"),
        (["--percent", "five"], "not a number"),
        (["--split", "train_sft", "--test-size", "1.5"], "--test-size"),
        (["--splits", "train_sft,nope"], "no split 'nope'"),
        (["--seed", "x"], "--seed"),
        (["--split", "train_sft", "--percent", "5"], "cannot be combined"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], needle: str, tmp_path: Path, kit, cli) -> None:
    folder = kit.write_hub(tmp_path / "hub", {"train_sft": [kit.row("a"), kit.row("b")]})
    if "--source" not in args:
        args = ["--source", str(folder), *args]
    result = cli("prepare", *args, "--out", str(tmp_path / "out"))
    assert result.code == 2
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert needle in result.err and "Traceback" not in result.err


def test_hub_id_offline_fails_fast_with_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tools", "data", "prepare", "--out", str(tmp_path / "o")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - start < 20
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--source HuggingFaceH4/ultrachat_200k" in proc.stderr
    assert "cannot be reached" in proc.stderr


def test_unreachable_hub_without_offline_switches_is_detected_in_seconds(tmp_path: Path) -> None:
    # In a subprocess: huggingface_hub reads the offline switches once per process, and this test session must
    # stay offline for every other test.
    code = (
        "from tools.data import sources as data\n"
        "from tools.core.errors import UserError\n"
        "try:\n"
        "    data.open_source(data.resolve_source('owner/name'), None)\n"
        "except UserError as error:\n"
        "    print(error)\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))  # discard port: refused at once
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - start < 15
    assert "--source owner/name: the Hugging Face Hub cannot be reached" in proc.stdout, proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------- atomicity


def _big_hub(folder: Path, kit, copies: int, bad_at: int | None = None) -> Path:  # noqa: ANN001
    """``copies`` x 1000 rows in row groups of 1000 (prompt_ids unique per copy); optionally one bad row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = pa.Table.from_pylist([kit.row(f"a{i}", exchanges=4) for i in range(1000)])
    (folder / "data").mkdir(parents=True)
    with pq.ParquetWriter(folder / "data" / "train_sft-00000-of-00001.parquet", base.schema) as writer:
        for copy in range(copies):
            ids = [f"{copy}-{i}" for i in range(base.num_rows)]
            if bad_at is not None and copy == bad_at // 1000:
                ids[bad_at % 1000] = ""
            writer.write_table(base.set_column(1, "prompt_id", pa.array(ids)), row_group_size=1000)
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train_sft\n    path: data/train_sft-*\n---\n"
    )
    return folder


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_interrupted_prepare_leaves_no_jsonl(tmp_path: Path, kit, signum: int) -> None:
    folder = _big_hub(tmp_path / "hub", kit, copies=60)
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    # Output goes to files, not pipes nobody reads: a full pipe would block the child before it sees the signal.
    stderr_path = tmp_path / "stderr.txt"
    argv = [sys.executable, "-m", "tools", "data", "prepare", "--source", str(folder), "--splits", "train_sft",
            "--percent", "100", "--out", str(out), "--no-fast", "--batch-size", "100", "--no-progress"]  # fmt: skip
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not list(out.glob(".train_sft.jsonl.*.tmp")):
                assert proc.poll() is None, stderr_path.read_text()
                time.sleep(0.02)
            time.sleep(0.3)  # mid-write
            assert proc.poll() is None, "prepare finished before it could be interrupted"
            proc.send_signal(signum)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:  # never leave the child behind, whatever failed above
                proc.kill()
                proc.wait()
    assert not (out / "train_sft.jsonl").exists() and not (out / "manifest.json").exists()
    if signum == signal.SIGTERM:
        assert proc.returncode == 130 and not list(out.glob(".*.tmp"))  # cleaned up on the way out
        assert "interrupted" in stderr_path.read_text()


def test_bad_row_mid_stream_fails_and_exits_promptly(tmp_path: Path, kit) -> None:
    """Regression: leaving a parquet scan mid-file used to hang the interpreter's exit."""
    folder = _big_hub(tmp_path / "hub", kit, copies=12, bad_at=7500)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools",
            "data",
            "prepare",
            "--source",
            str(folder),
            "--splits",
            "train_sft",
            "--percent",
            "100",
            "--out",
            str(tmp_path / "out"),
            "--on-bad-row",
            "fail",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr == "error: train_sft row 7500: missing-prompt-id: prompt_id is '' (--on-bad-row fail)\n"
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


# --------------------------------------------------------------------------------------------- bundled sample


def test_committed_sample_is_reproduced_byte_for_byte(tmp_path: Path, cli, monkeypatch) -> None:
    from tools.data.sample import write_hub_sample

    monkeypatch.chdir(REPO)
    write_hub_sample(tmp_path / "hub")
    committed = REPO / "data" / "hub-sample"
    for path in sorted(committed.rglob("*")):
        if path.is_file():
            assert (tmp_path / "hub" / path.relative_to(committed)).read_bytes() == path.read_bytes(), path
    out = tmp_path / "sample"
    result = cli(
        "prepare",
        "--source",
        "data/hub-sample",
        "--splits",
        "train_sft,test_sft",
        "--percent",
        "100",
        "--gate-size",
        "0.5",
        "--out",
        str(out),
    )
    assert result.code == 0, result.err
    names = sorted(p.name for p in (REPO / "data" / "sample").iterdir())
    assert names == ["gate_sft.jsonl", "manifest.json", "test_sft.jsonl", "train_sft.jsonl"]
    for name in names:
        assert (out / name).read_bytes() == (REPO / "data" / "sample" / name).read_bytes(), name
    size = sum(p.stat().st_size for p in committed.rglob("*") if p.is_file())
    assert size < 1_000_000


# --------------------------------------------------------------------------------------------- memory


def test_parquet_read_ahead_is_one_row_group_and_keeps_row_order(tmp_path: Path, kit) -> None:
    """A consumer slower than pyarrow's decoder must not let a whole file queue up in memory (it did: the threaded
    scanner reads a fragment ahead with no bound short of 1 GiB, so peak RSS grew with the split)."""
    import pyarrow as pa

    from tools.data import sources as data

    pad = "lorem ipsum dolor sit amet " * 200  # ~5 KB a turn: ~0.5 MB a 50-row group, ~10 MB the file
    rows = []
    for i in range(1000):
        r = kit.row(f"m{i}", exchanges=1)
        r["messages"][1]["content"] += pad
        r["messages"][0]["content"] += pad
        rows.append(r)
    folder = kit.write_hub(tmp_path / "hub", {"train_gen": rows}, row_group_size=50)
    source = data.resolve_source(str(folder))
    dataset = data.open_source(source, None)["train_gen"]
    baseline = pa.total_allocated_bytes()
    peak, ids = 0, []
    with data.without_torch(), contextlib.closing(data.iter_tables(dataset, 30, source, "train_gen")) as tables:
        for table in tables:
            ids += table.column("prompt_id").to_pylist()
            time.sleep(0.005)  # the decoder threads run ahead while we wait
            peak = max(peak, pa.total_allocated_bytes() - baseline)
    assert ids == [r["prompt_id"] for r in rows]
    assert peak < 3_000_000, f"{peak / 1e6:.1f} MB of decoded Arrow data held at once"
