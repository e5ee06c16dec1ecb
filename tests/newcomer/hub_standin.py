"""A stand-in for the Hugging Face Hub on 127.0.0.1: one local folder served as one dataset repo, speaking the part
of the hub's HTTP API that ``datasets.load_dataset(repo_id, streaming=True)`` uses (huggingface_hub's file
metadata ``HEAD`` and ``resolve`` downloads with ``Range``, ``dataset_info``, ``tree`` listings and ``paths-info``;
https://huggingface.co/docs/hub/api). ``HF_ENDPOINT`` points the libraries at it
(https://huggingface.co/docs/huggingface_hub/package_reference/environment_variables#hfendpoint). Every request is
recorded, so a test can tell that a command really asked the hub. Nothing here reaches the network.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # the one revision the stand-in serves
_RESOLVE = re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_API = re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)(?:/(?P<verb>revision|tree|paths-info)(?:/(?P<rev>[^/]+))?"
                  r"(?:/(?P<path>.*))?)?$")  # fmt: skip


class HubStandIn:
    """Serve ``folder`` as the dataset ``repo_id`` at ``main`` (and at :data:`COMMIT`) until :meth:`close`."""

    def __init__(self, folder: Path, repo_id: str) -> None:
        self.folder, self.repo_id = folder, repo_id
        self.requests: list[str] = []  # "METHOD path" of every request, in order
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                hub.answer(self, body=False)

            def do_GET(self) -> None:  # noqa: N802
                hub.answer(self, body=True)

            def do_POST(self) -> None:  # noqa: N802
                hub.answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------------------------------------ the repo

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def entry(self, rel: str) -> dict[str, Any]:
        path = self.folder / rel
        if path.is_dir():
            return {"type": "directory", "oid": hashlib.sha1(rel.encode()).hexdigest(), "path": rel}
        return {"type": "file", "oid": hashlib.sha1(path.read_bytes()).hexdigest(), "size": path.stat().st_size,
                "path": rel}  # fmt: skip

    def info(self) -> dict[str, Any]:
        return {"id": self.repo_id, "_id": "0" * 24, "sha": COMMIT, "private": False, "disabled": False,
                "gated": False, "downloads": 0, "likes": 0, "tags": [], "lastModified": "2026-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": name} for name in self.files()]}  # fmt: skip

    def tree(self, rel: str, recursive: bool) -> list[dict[str, Any]] | None:
        base = self.folder / rel if rel else self.folder
        if not base.is_dir():
            return None
        children = base.rglob("*") if recursive else base.iterdir()
        return [self.entry(p.relative_to(self.folder).as_posix()) for p in sorted(children)]

    # ------------------------------------------------------------------------------------------------ HTTP

    def answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append(f"{handler.command} {handler.path}")
        url = urllib.parse.urlsplit(handler.path)
        path = urllib.parse.unquote(url.path)
        query = urllib.parse.parse_qs(url.query)
        resolve, api = _RESOLVE.match(path), _API.match(path)
        if resolve and resolve["repo"] == self.repo_id and resolve["rev"] in ("main", COMMIT):
            self._file(handler, resolve["path"], body)
        elif api and api["repo"] == self.repo_id and (api["rev"] or "main") in ("main", COMMIT):
            if api["verb"] in (None, "revision"):
                self._json(handler, self.info(), body)
            elif api["verb"] == "tree":
                listing = self.tree(api["path"] or "", query.get("recursive", ["false"])[0].lower() == "true")
                self._json(handler, listing, body) if listing is not None else self._missing(handler, "Entry")
            else:  # paths-info: a form or JSON body naming paths
                raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)).decode()
                form = (json.loads(raw) if raw.startswith("{") else urllib.parse.parse_qs(raw)) if raw else {}
                names = form.get("paths", [])
                names = [names] if isinstance(names, str) else names
                self._json(handler, [self.entry(n) for n in names if (self.folder / n).exists()], body)
        else:
            self._missing(handler, "Repository")

    def _send(self, handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes,
              body: bool) -> None:  # fmt: skip
        handler.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(data))}.items():
            handler.send_header(name, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def _json(self, handler: BaseHTTPRequestHandler, value: Any, body: bool) -> None:
        self._send(handler, 200, {"Content-Type": "application/json"}, json.dumps(value).encode(), body)

    def _missing(self, handler: BaseHTTPRequestHandler, what: str) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Code": f"{what}NotFound"}
        data = json.dumps({"error": f"{what} not found"}).encode()
        self._send(handler, 404, headers, data, handler.command != "HEAD")

    def _file(self, handler: BaseHTTPRequestHandler, rel: str, body: bool) -> None:
        path = self.folder / rel
        if not path.is_file():
            self._missing(handler, "Entry")
            return
        data = path.read_bytes()
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha1(data).hexdigest()}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}  # fmt: skip
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", handler.headers.get("Range", ""))
        if ranged:
            start = int(ranged[1])
            stop = min(int(ranged[2]) + 1 if ranged[2] else len(data), len(data))
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            self._send(handler, 206, headers, data[start:stop], body)
            return
        self._send(handler, 200, headers, data, body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
