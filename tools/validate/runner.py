"""Runs layers B and C over many specs fast: a content-addressed result cache and worker processes for layer B.

The cache (``build/cache/validate/``) keys each spec's B and C findings by what decides them: the spec's bytes,
its path (relative references resolve from it, findings name it), the local files it references (bytes of small
files; name, size and mtime of every file below a referenced folder), the azure-ai-ml version and the
validator's own code and schemas. An unchanged tree re-validates from the cache at once; any change to a spec or
what it references misses. Layer D runs every time (it needs every spec's facts together, and is fast).

Layer B costs about 40 ms a spec in the SDK: misses are spread over ``jobs`` worker processes (each imports
azure-ai-ml once); C runs in the parent, where its compiled validators are warm.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tools.core.repo import active
from tools.validate.document import Spec
from tools.validate.findings import Finding
from tools.validate.rules import RuleContext

MAX_HASHED_BYTES = 1 << 20  # larger referenced files are keyed by size and mtime
MAX_LISTED_FILES = 2000  # a referenced folder is keyed by at most this many entries (then its count)
LOCAL_KEYS = ("code", "conda_file", "path", "component", "model", "environment", "local_path", "entry_script",
              "scoring_script", "dockerfile_path", "file")  # fmt: skip
MIN_PARALLEL = 8  # fewer layer-B misses than this run in-process (a worker's SDK import costs ~2 s)


@cache
def _fingerprint() -> str:
    """The SDK version, plus the validator's code and the facts it reads (a change invalidates every entry)."""
    from importlib.metadata import version

    digest = hashlib.sha256(version("azure-ai-ml").encode())
    here = Path(__file__).resolve().parent
    repo = active()
    for path in sorted([*here.rglob("*.py"), repo.kinds_file, *repo.json_schema_dir.glob("*.json"),
                        *repo.contracts_dir.glob("*.yaml"), *repo.catalog_dir.glob("*.yaml")]):  # fmt: skip
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


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
            for count, child in enumerate(sorted(path.rglob("*"))):
                if count >= MAX_LISTED_FILES:
                    digest.update(b"+more")
                    break
                stat = child.stat()
                digest.update(f"{child.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        else:
            digest.update(b"missing")
    except OSError:
        digest.update(b"unreadable")


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
    from tools.validate.core import layer_b

    return layer_b(spec)


def _worker_init(root: str) -> None:
    from tools.core.offline import apply_offline_env
    from tools.core.repo import select
    from tools.validate.sdk import import_sdk

    apply_offline_env()
    select(root)
    import_sdk()


@dataclass
class Runner:
    """``Runner()(specs, layers, context)``: the B, C and D findings of checkable specs."""

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
        if not self.cache:
            return
        from tools.core.files import atomic_write_text

        with contextlib.suppress(OSError):  # a read-only checkout: no cache, still correct
            atomic_write_text(self.cache_dir / key[:2] / f"{key}.json", json.dumps([_to_dict(f) for f in findings]))

    def __call__(self, specs: list[Spec], layers: str, context: RuleContext) -> list[Finding]:
        from tools.validate.core import cli_given, layer_c, layer_d, reconcile

        cached_layers = "".join(layer for layer in "BC" if layer in layers)
        out: list[Finding] = []
        misses: list[tuple[Spec, str]] = []
        for spec in specs:
            if "D" in layers:
                out.extend(layer_d(spec, context))
            if not cached_layers:
                continue
            key = cache_key(spec, cached_layers)
            hit = self._read(key)
            if hit is None:
                misses.append((spec, key))
            else:
                out.extend(hit)
        b_results = self._layer_b([spec for spec, _ in misses]) if "B" in layers and misses else None
        for index, (spec, key) in enumerate(misses):
            b = cli_given(spec, b_results[index]) if b_results is not None else None
            fresh = (cli_given(spec, reconcile(spec, layer_c(spec), b)) if "C" in layers else []) + (b or [])
            out.extend(fresh)
            if not any(f.rule == "internal" for f in fresh):
                self._write(key, fresh)
        return out

    def _layer_b(self, specs: list[Spec]) -> list[list[Finding]]:
        jobs = self.jobs or os.cpu_count() or 1
        if jobs <= 1 or len(specs) < MIN_PARALLEL:
            return [_worker_b(spec) for spec in specs]
        import multiprocessing

        context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        workers = min(jobs, max(1, len(specs) // MIN_PARALLEL))
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                 initargs=(str(active().root),)) as pool:  # fmt: skip
            return list(pool.map(_worker_b, specs, chunksize=max(1, len(specs) // (workers * 8))))
