"""Runs layers B, C and D over many specs fast: a content-addressed result cache and worker processes for layer B.

The cache (``build/cache/validate/``) keys each spec's B and C findings by what decides them: the spec's bytes,
its path (relative references resolve from it, findings name it), the local files it references (bytes of small
files; name, size and mtime of the entries below a referenced folder, at most ``MAX_LISTED_FILES``), and the
fingerprint: the azure-ai-ml version, the validator's code (``tools/validate``, ``tools/core``), kinds, exported
schemas, contracts and catalog. Layer D reads across files (computes, registered models), so its findings are
kept as one entry per run, keyed by every spec of the run. An unchanged tree re-validates from the cache (parse,
hash, read); any change to a spec, what it references or the fingerprint misses.

Layer B costs 5-300 ms a spec in the SDK (pipelines the most): misses are spread over ``jobs`` worker processes,
longest first, forked from a forkserver that imported azure-ai-ml once (tools.validate.preload); while they run,
C and D run in the parent, where the compiled validators are warm.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tools.core.files import atomic_write_text
from tools.core.offline import apply_offline_env
from tools.core.repo import active, select
from tools.validate.document import Spec
from tools.validate.findings import Finding
from tools.validate.layers import cli_given, layer_b, layer_c, layer_d, reconcile
from tools.validate.rules.support import RuleContext
from tools.validate.sdk import import_sdk

MAX_HASHED_BYTES = 1 << 20  # larger referenced files are keyed by size and mtime
MAX_LISTED_FILES = 2000  # a referenced folder is keyed by at most this many entries (then a marker)
LOCAL_KEYS = ("code", "conda_file", "path", "component", "model", "environment", "local_path", "entry_script",
              "scoring_script", "dockerfile_path", "file")  # fmt: skip
MIN_PARALLEL = 8  # fewer layer-B misses than this run in-process (a worker's SDK import costs ~2 s)


def fingerprint(repo: Any, code_dirs: list[Path], sdk_version: str) -> str:
    """What every entry depends on: the SDK version, the code that decides a verdict (``code_dirs``: the validator's
    modules and rules, the core modules it reads YAML and facts through) and the repo's facts (kinds, exported
    schemas, contracts, catalog), by name, size and modification time. A change to any of them misses everywhere."""
    digest = hashlib.sha256(sdk_version.encode())
    files = [path for folder in code_dirs for path in folder.rglob("*.py")]
    for path in sorted([*files, repo.kinds_file, *repo.json_schema_dir.glob("*.json"),
                        *repo.contracts_dir.glob("*.yaml"), *repo.catalog_dir.glob("*.yaml")]):  # fmt: skip
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@cache
def _fingerprint() -> str:
    here = Path(__file__).resolve().parent
    return fingerprint(active(), [here, here.parent / "core"], _sdk_version())


def _sdk_version() -> str:
    return version("azure-ai-ml")


def _local_refs(spec: Spec) -> list[Path]:
    out: list[Path] = []

    def walk(node: Any, key: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in LOCAL_KEYS and node and ":" not in node.split("/")[0] \
                and not node.startswith("${{") and len(node) < 1024:
            out.append(spec.path.parent / node)

    walk(spec.data, None)
    return out


def _describe(path: Path, digest: Any) -> None:
    try:
        if path.is_file():
            stat = path.stat()
            if stat.st_size <= MAX_HASHED_BYTES:
                digest.update(b"F" + path.read_bytes())
            else:
                digest.update(f"L{stat.st_size}:{stat.st_mtime_ns}".encode())
        elif path.is_dir():
            _describe_folder(path, digest)
        else:
            digest.update(b"missing")
    except OSError:
        digest.update(b"unreadable")


def _describe_folder(path: Path, digest: Any) -> None:
    """Name, size and modification time of the entries below a folder, in a fixed order, at most
    ``MAX_LISTED_FILES`` of them (then a marker): bounded even where a spec names a large tree (``code: ../..``)."""
    count, top = 0, str(path)
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        relative = folder[len(top):].lstrip(os.sep)
        for name in [*sorted(files), *dirs]:
            if count >= MAX_LISTED_FILES:
                digest.update(b"+more")
                return
            count += 1
            try:
                stat = os.stat(os.path.join(folder, name))
            except OSError:
                digest.update(f"{relative}/{name}:unreadable\n".encode())
                continue
            digest.update(f"{relative}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())


def cache_key(spec: Spec, layers: str) -> str:
    digest = hashlib.sha256(f"{_fingerprint()}\0{layers}\0{spec.kind}\0{spec.path}\0{spec.display}\0".encode())
    digest.update(spec.text.encode())
    for ref in _local_refs(spec):
        digest.update(f"\0{ref}\0".encode())
        _describe(ref, digest)
    return digest.hexdigest()


def _to_dict(finding: Finding) -> dict[str, Any]:
    return {"path": finding.path, "line": finding.line, "key_path": list(finding.key_path), "message": finding.message,
            "layer": finding.layer, "severity": finding.severity, "rule": finding.rule}  # fmt: skip


def _from_dict(data: dict[str, Any]) -> Finding:
    return Finding(data["path"], data["line"], tuple(data["key_path"]), data["message"], data["layer"],
                   data["severity"], data["rule"])  # fmt: skip


def _worker_b(spec: Spec) -> list[Finding]:
    return layer_b(spec)


def _worker_init(root: str) -> None:
    apply_offline_env()
    select(root)
    import_sdk()  # already imported where the forkserver preloaded it (tools.validate.preload)


def _cost(spec: Spec) -> int:
    """A rough order of a spec's layer-B time, for scheduling the longest first: a pipeline (``jobs:``) costs the
    SDK about ten times a single-entity spec of the same size (every step is loaded and validated)."""
    return len(spec.text) * (10 if isinstance(spec.data, dict) and "jobs" in spec.data else 1)


def _text_key(spec: Spec) -> str:
    return hashlib.sha256(f"{spec.display}\0{spec.kind}\0{spec.text}".encode()).hexdigest()


def run_key(every: list[Spec], checked: list[Spec], keys: dict[int, str], layers: str, policy: str) -> str:
    """What decides layer D's findings on ``checked``: every spec of the run (rules read across files: computes,
    registered models), each with its bytes and referenced local files, the policy and the fingerprint."""
    digest = hashlib.sha256(f"{_fingerprint()}\0run\0{layers}\0{policy}\0".encode())
    checked_ids = {id(spec) for spec in checked}
    for spec in every:  # a spec the rules do not check is only read for its content (RuleContext)
        key = keys.get(id(spec)) or (cache_key(spec, "D") if id(spec) in checked_ids else _text_key(spec))
        digest.update(f"{key}\n".encode())
    digest.update("\0".join(spec.display for spec in checked).encode())
    return digest.hexdigest()


class _Pending:
    """Layer-B results being computed in worker processes (``result()`` waits for them), or here when there are
    few. The pool starts in a thread: its forkserver imports azure-ai-ml first (about 2 s), and meanwhile this
    process goes on with layers C and D."""

    def __init__(self, specs: list[Spec], jobs: int) -> None:
        self.specs = specs
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[Any] = []
        self.order = sorted(range(len(specs)), key=lambda i: _cost(specs[i]), reverse=True)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        if jobs > 1 and len(specs) >= MIN_PARALLEL:
            self.thread = threading.Thread(target=self._start, args=(jobs,), daemon=True)
            self.thread.start()

    def _start(self, jobs: int) -> None:
        try:
            if os.name == "posix":
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["tools.validate.preload"])  # workers fork with azure-ai-ml imported
            else:
                context = multiprocessing.get_context("spawn")
            workers = min(jobs, max(1, len(self.specs) // MIN_PARALLEL))
            self.pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                            initargs=(str(active().root),))  # fmt: skip
            self.futures = [self.pool.submit(_worker_b, self.specs[i]) for i in self.order]
        except BaseException as error:  # noqa: BLE001 - re-raised in result(), in the caller's thread
            self.error = error

    def result(self) -> list[list[Finding]]:
        if self.thread is None:
            return [_worker_b(spec) for spec in self.specs]
        self.thread.join()
        if self.error is not None:
            raise self.error
        out: list[list[Finding]] = [[] for _ in self.specs]
        for index, future in zip(self.order, self.futures, strict=True):
            out[index] = future.result()
        return out

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


@dataclass
class Runner:
    """``Runner()(specs, layers, context)``: the B, C and D findings of checkable specs.

    Order of work: every spec's cache key and entry first; the layer-B misses go to the worker processes at once
    (longest first), and while they run the parent computes layer D (or reads it from the run's entry) and layer
    C of the misses; then B's results are reconciled with C's and stored."""

    jobs: int | None = None  # worker processes for layer B (None: the CPU count)
    cache: bool = True

    @property
    def cache_dir(self) -> Path:
        return active().build_dir / "cache" / "validate"

    def _read(self, key: str) -> list[Finding] | None:
        if not self.cache:
            return None
        try:
            return [_from_dict(d) for d in json.loads((self.cache_dir / key[:2] / f"{key}.json").read_text())]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write(self, key: str, findings: list[Finding]) -> None:
        if not self.cache or any(f.rule == "internal" for f in findings):
            return

        with contextlib.suppress(OSError):  # a read-only checkout: no cache, still correct
            atomic_write_text(self.cache_dir / key[:2] / f"{key}.json", json.dumps([_to_dict(f) for f in findings]))

    def __call__(self, specs: list[Spec], layers: str, context: RuleContext) -> list[Finding]:
        cached_layers = "".join(layer for layer in "BC" if layer in layers)
        out: list[Finding] = []
        keys: dict[int, str] = {}
        misses: list[tuple[Spec, str]] = []
        for spec in specs if cached_layers else []:
            key = keys[id(spec)] = cache_key(spec, cached_layers)
            hit = self._read(key)
            if hit is None:
                misses.append((spec, key))
            else:
                out.extend(hit)
        pending = _Pending([spec for spec, _ in misses], self.jobs or os.cpu_count() or 1) \
            if "B" in layers and misses else None  # fmt: skip
        try:
            if "D" in layers:
                out.extend(self._layer_d(specs, context, keys, layers, layer_d))
            c_results = [layer_c(spec) if "C" in layers else [] for spec, _ in misses]
            b_results = pending.result() if pending is not None else None
        finally:
            if pending is not None:
                pending.close()
        for index, (spec, key) in enumerate(misses):
            b = cli_given(spec, b_results[index]) if b_results is not None else None
            fresh = (cli_given(spec, reconcile(spec, c_results[index], b)) if "C" in layers else []) + (b or [])
            out.extend(fresh)
            self._write(key, fresh)
        return out

    def _layer_d(self, specs: list[Spec], context: RuleContext, keys: dict[int, str], layers: str,
                 layer_d: Any) -> list[Finding]:  # fmt: skip
        """Layer D over the run, from the run's entry when every spec (and what it references) is unchanged."""
        key = run_key(context.specs, specs, keys, layers, context.policy) if self.cache else ""
        hit = self._read(key) if key else None
        if hit is not None:
            return hit
        found = [f for spec in specs for f in layer_d(spec, context)]
        if key:
            self._write(key, found)
        return found
