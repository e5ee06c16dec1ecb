"""Benchmark: ``python -m tools data prepare`` against the original walkthrough's method on ultrachat-sized data.

Generates synthetic ultrachat-shaped conversations in the hub layout at the real row counts (times ``--scale``),
then runs, each in its own subprocess (peak RSS from ``wait4``'s ``ru_maxrss``, which counts mapped file pages):

  ours      ``python -m tools data prepare --percent 100`` over all four splits (streaming, Arrow batches);
  original  ``load_dataset(folder)`` (builds the Arrow cache in a fresh cache dir), then ``json.dump`` per record.

Both at ``--scale`` and at ``--small-scale`` (default scale / 10), to show whether peak memory grows with the data.

Synthetic shape (chosen to match ultrachat_200k's ~6.7 KB per conversation in Arrow): exchanges per conversation
1..8 with weights 10/15/25/20/12/10/5/3 % (mean 3.74, i.e. ~7.5 messages); user turns ~N(320, 110) characters
clipped to [40, 900], assistant turns ~N(1340, 500) clipped to [120, 4000]; text is drawn from a pool of 40,000
pseudo-English sentences over a 6,000-word Zipf vocabulary (compresses roughly like prose); prompt = first user turn;
prompt_id = sha256(prompt).

Usage: .venv/bin/python benchmarks/data_prepare.py [--scale 1.0] [--small-scale 0.1] [--keep DIR] [--skip-original]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

REAL_ROWS = {"train_sft": 207865, "test_sft": 23110, "train_gen": 256032, "test_gen": 28304}
REAL_ARROW_BYTES = {"train_sft": 1397058554, "test_sft": 154695659, "train_gen": 1347396812, "test_gen": 148276089}
EXCHANGE_WEIGHTS = [10, 15, 25, 20, 12, 10, 5, 3]  # 1..8 user/assistant exchanges
ROW_GROUP = 1000

ORIGINAL = r"""
import json, os, sys, time
from datasets import load_dataset
source, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
dataset = load_dataset(source)                 # the walkthrough: load (builds the Arrow cache) ...
t1 = time.perf_counter()
for split in dataset:                          # ... then json.dump every record to a JSONL file
    with open(os.path.join(out, f"{split}.jsonl"), "w", encoding="utf-8") as f:
        for record in dataset[split]:
            json.dump(record, f)
            f.write("\n")
print(json.dumps({"load_s": t1 - t0, "write_s": time.perf_counter() - t1}))
"""


def _vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    from tools.data.sample import TOPICS

    words: set[str] = set()
    for subjects, tips in TOPICS.values():
        for text in subjects + tips:
            words.update(w.strip(".,;:'\"?!()").lower() for w in text.split())
    words.discard("")
    syllables = ["ka", "lo", "mi", "ter", "sa", "ven", "di", "ro", "an", "el", "us", "qui", "por", "na", "bel", "tis"]
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def _sentences(rng: random.Random, count: int = 40000) -> list[str]:
    vocab = _vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(vocab))]  # Zipf
    rng.shuffle(vocab)
    pool = []
    for _ in range(count):
        words = rng.choices(vocab, weights=weights, k=rng.randint(6, 24))
        pool.append(" ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!", ":"]))
    return pool


def _text(rng: random.Random, pool: list[str], mean: float, sd: float, lo: int, hi: int) -> str:
    target = int(min(hi, max(lo, rng.gauss(mean, sd))))
    parts = rng.choices(pool, k=max(1, target // 90 + 1))
    text = " ".join(parts)
    return text[:target]


def generate(folder: Path, scale: float, seed: int = 0) -> dict[str, dict[str, int]]:
    """Write the hub-layout folder; return per split rows, arrow bytes and parquet bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tools.data.sample import hub_readme

    rng = random.Random(seed)
    pool = _sentences(rng)
    schema = pa.schema(
        [
            ("prompt", pa.string()),
            ("prompt_id", pa.string()),
            ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ]
    )
    stats: dict[str, dict[str, int]] = {}
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split, real in REAL_ROWS.items():
        rows = max(1, round(real * scale))
        path = folder / "data" / f"{split}-00000-of-00001.parquet"
        arrow_bytes = 0
        with pq.ParquetWriter(path, schema, compression="snappy") as writer:
            done = 0
            while done < rows:
                batch = []
                for i in range(done, min(rows, done + ROW_GROUP)):
                    exchanges = rng.choices(range(1, 9), weights=EXCHANGE_WEIGHTS)[0]
                    messages = []
                    for _ in range(exchanges):
                        messages.append({"content": _text(rng, pool, 320, 110, 40, 900), "role": "user"})
                        messages.append({"content": _text(rng, pool, 1340, 500, 120, 4000), "role": "assistant"})
                    prompt = f"{split} {i}: " + messages[0]["content"]
                    messages[0]["content"] = prompt
                    batch.append(
                        {
                            "prompt": prompt,
                            "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(),
                            "messages": messages,
                        }
                    )
                table = pa.Table.from_pylist(batch, schema=schema)
                arrow_bytes += table.nbytes
                writer.write_table(table, row_group_size=ROW_GROUP)
                done += len(batch)
        stats[split] = {"rows": rows, "arrow_bytes": arrow_bytes, "parquet_bytes": path.stat().st_size}
    counts = {split: s["rows"] for split, s in stats.items()}
    (folder / "README.md").write_text(hub_readme(counts, {k: s["arrow_bytes"] for k, s in stats.items()}))
    return stats


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``cmd``; wall seconds and the child's peak RSS in MiB (``ru_maxrss``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}):\n{err[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": usage.ru_maxrss / 1024, "stdout": out}


def run_scale(scale: float, work: Path, skip_original: bool) -> dict[str, object]:
    folder = work / f"hub-{scale:g}"
    t0 = time.perf_counter()
    stats = generate(folder, scale)
    gen_s = time.perf_counter() - t0
    rows = sum(s["rows"] for s in stats.values())
    arrow = sum(s["arrow_bytes"] for s in stats.values())
    parquet = sum(s["parquet_bytes"] for s in stats.values())
    print(
        f"scale {scale:g}: generated {rows} rows, {arrow / 1e9:.2f} GB Arrow ({arrow / rows:.0f} B/row), "
        f"{parquet / 1e9:.2f} GB parquet in {gen_s:.0f} s",
        flush=True,
    )
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_DATASETS_CACHE=str(work / "hf-cache"),

    )
    result: dict[str, object] = {"scale": scale, "rows": rows, "arrow_bytes": arrow, "parquet_bytes": parquet}
    splits = ",".join(REAL_ROWS)
    ours_out = work / "ours"
    ours = measure(
        [
            sys.executable,
            "-m",
            "tools",
            "data",
            "prepare",
            "--source",
            str(folder),
            "--splits",
            splits,
            "--percent",
            "100",
            "--out",
            str(ours_out),
            "--no-progress",
        ],
        env,
    )
    out_bytes = sum(p.stat().st_size for p in ours_out.glob("*.jsonl"))
    ours.update(out_bytes=out_bytes)
    result["ours"] = ours
    print(
        f"  ours:     {ours['wall_s']:.1f} s (CPU {ours['cpu_s']:.1f} s)  peak RSS {ours['peak_rss_mib']:.0f} MiB",
        flush=True,
    )
    shutil.rmtree(ours_out)
    if not skip_original:
        orig_out = work / "original"
        orig_out.mkdir()
        original = measure([sys.executable, "-c", ORIGINAL, str(folder), str(orig_out)], env)
        original.update(json.loads(original.pop("stdout").strip().splitlines()[-1]))
        original["out_bytes"] = sum(p.stat().st_size for p in orig_out.glob("*.jsonl"))
        result["original"] = original
        print(
            f"  original: {original['wall_s']:.1f} s  peak RSS {original['peak_rss_mib']:.0f} MiB "
            f"(load {original['load_s']:.1f} s + json.dump {original['write_s']:.1f} s)",
            flush=True,
        )
        shutil.rmtree(orig_out)
        shutil.rmtree(work / "hf-cache", ignore_errors=True)
    shutil.rmtree(folder)
    return result


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| scale | method | rows | wall s | CPU s | rows/s | MB/s (Arrow in) | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        for method in ("ours", "original"):
            if method not in res:
                continue
            m = res[method]
            rows, mb = res["rows"], res["arrow_bytes"] / 1e6
            lines.append(
                f"| {res['scale']:g} | {method} | {rows} | {m['wall_s']:.1f} | {m['cpu_s']:.1f} | "
                f"{rows / m['wall_s']:,.0f} | {mb / m['wall_s']:,.0f} | {m['peak_rss_mib']:,.0f} |"
            )
        if "original" in res:
            o, r = res["original"], res["ours"]
            lines.append(
                f"| {res['scale']:g} | original / ours | | {o['wall_s'] / r['wall_s']:.1f}x | "
                f"{o['cpu_s'] / r['cpu_s']:.1f}x | | | {o['peak_rss_mib'] / r['peak_rss_mib']:.1f}x |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real row counts (default 1.0)")
    parser.add_argument("--small-scale", type=float, default=None, help="second, smaller run (default scale/10; 0=off)")
    parser.add_argument("--skip-original", action="store_true", help="only time prepare")
    parser.add_argument("--work", default=None, help="work folder (default: a temp dir, removed afterwards)")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    small = args.scale / 10 if args.small_scale is None else args.small_scale
    scales = [s for s in (small, args.scale) if s > 0]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-data-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = [run_scale(scale, work, args.skip_original) for scale in scales]
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    if args.json:
        for res in results:
            for method in ("ours", "original"):
                if method in res:
                    res[method].pop("stdout", None)  # type: ignore[union-attr]
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
