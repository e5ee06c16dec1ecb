"""The one runner for `az`: every command the operate tools send to Azure goes through ``Az``.

``Az.run`` runs a command and checks its exit code; ``Az.capture`` reads stdout (``--query X -o tsv``: the bare
value); ``Az.show`` asks for a resource (``show ... -o json``) and returns None when Azure answers ResourceNotFound
(`show` of a missing resource exits non-zero: learn.microsoft.com `how-to-troubleshoot-online-endpoints`,
"ResourceNotFound"); any other failure raises ``CloudRefused`` naming the command and the CLI's last error line.
What `az` prints goes to the run's log (``log``: each command as the shell line it is, then its stdout, stderr
and exit code), so the terminal shows one line per step and the log is a replayable script with its answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from tools.core.errors import CloudRefused, UserError
from tools.operate.steps import shell_command

NOT_FOUND_MARKERS = ("ResourceNotFound", "could not be found", "not found", "NotFound")


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def said(self) -> str:
        """The CLI's last non-empty stderr line (its error message)."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_log_path(runs_dir: Path, label: str) -> Path:
    """``.runs/apply/<label>-<YYYYmmdd-HHMMSS>.log``: one log per run (a second run in the same second gets -2)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = runs_dir / "apply"
    path, n = folder / f"{label}-{stamp}.log", 1
    while path.exists():
        n += 1
        path = folder / f"{label}-{stamp}-{n}.log"
    return path


class Az:
    """Runs `az` from ``cwd`` (the repo root: `-f` paths are repo-relative); its output goes to ``log``."""

    def __init__(self, cwd: Path, log: Path | None = None) -> None:
        self.cwd = cwd
        self.log_path = log
        self._log: IO[str] | None = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            self._log = log.open("a", encoding="utf-8")

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def require() -> None:
        if shutil.which("az", path=os.environ.get("PATH")) is None:
            raise UserError("az: not found on PATH (install the Azure CLI and `az extension add --name ml`)")

    def _record(self, argv: list[str] | tuple[str, ...], result: Result) -> None:
        if self._log is None:
            return
        self._log.write(f"$ {shell_command(argv)}\n")
        for text in (result.stdout, result.stderr):
            if text:
                self._log.write(text if text.endswith("\n") else text + "\n")
        self._log.write(f"# exit {result.code}\n")
        self._log.flush()

    def call(self, argv: list[str] | tuple[str, ...], env: dict[str, str] | None = None) -> Result:
        """Run and capture everything (recorded in the log); ``env``: the whole environment (default: ours)."""
        done = subprocess.run(list(argv), cwd=self.cwd, check=False, capture_output=True, text=True, env=env)
        result = Result(done.returncode, done.stdout, done.stderr)
        self._record(argv, result)
        return result

    def _refused(self, what: str, argv: list[str] | tuple[str, ...], result: Result) -> CloudRefused:
        said = f": {result.said()}" if result.said() else ""
        return CloudRefused(f"{what} failed (exit {result.code}): {shell_command(argv)}{said}")

    def run(self, argv: list[str] | tuple[str, ...], what: str) -> Result:
        """Run a command; non-zero exit: CloudRefused naming ``what``, the command and the CLI's error line."""
        result = self.call(argv)
        if result.code != 0:
            raise self._refused(what, argv, result)
        return result

    def capture(self, argv: list[str] | tuple[str, ...], what: str) -> str:
        return self.run(argv, what).stdout.strip()

    def json(self, argv: list[str] | tuple[str, ...], what: str) -> Any:
        text = self.capture([*argv, "-o", "json"], what)
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            raise CloudRefused(f"{what}: az printed no JSON: {shell_command(argv)}") from None

    def show(self, argv: list[str] | tuple[str, ...], output: str = "json") -> dict[str, Any] | None:
        """The resource as Azure holds it, or None when it does not exist."""
        command = [*argv, "-o", output]
        result = self.call(command)
        if result.code != 0:
            if any(marker in result.stderr for marker in NOT_FOUND_MARKERS):
                return None
            raise CloudRefused(f"{shell_command(command)} failed (exit {result.code}): {result.said()}")
        try:
            data = yaml.safe_load(result.stdout) if output == "yaml" else json.loads(result.stdout or "null")
        except (ValueError, yaml.YAMLError):
            raise CloudRefused(f"{shell_command(command)}: could not read its {output} output") from None
        return data if isinstance(data, dict) else None
