"""The one runner for `az`: every command the operate tools send to Azure goes through ``Az``.

``Az.run`` streams a command's output; ``Az.capture`` reads stdout (``--query X -o tsv``: the bare value);
``Az.show`` asks for a resource (``show ... -o json``) and returns None when Azure answers ResourceNotFound
(`show` of a missing resource exits non-zero: azureml-operations.md "Create, update, show"); any other failure
raises ``CloudRefused``. Each call is printed as the shell line it is, so a run's log is a replayable script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class Az:
    """Runs `az` from ``cwd`` (the repo root: `-f` paths are repo-relative)."""

    def __init__(self, cwd: Path, echo: bool = True) -> None:
        self.cwd = cwd
        self.echo = echo

    @staticmethod
    def require() -> None:
        if shutil.which("az", path=os.environ.get("PATH")) is None:
            raise UserError("az: not found on PATH (install the Azure CLI and `az extension add --name ml`)")

    def _print(self, argv: list[str] | tuple[str, ...]) -> None:
        if self.echo:
            print(f"    $ {shell_command(argv)}", flush=True)

    def call(self, argv: list[str] | tuple[str, ...], quiet: bool = False) -> Result:
        """Run and capture everything (stderr is passed on unless ``quiet``)."""
        if not quiet:
            self._print(argv)
        result = subprocess.run(list(argv), cwd=self.cwd, check=False, capture_output=True, text=True)
        if result.stderr and not quiet:
            sys.stderr.write(result.stderr)
        return Result(result.returncode, result.stdout, result.stderr)

    def run(self, argv: list[str] | tuple[str, ...], what: str) -> None:
        """Stream a command's output; non-zero exit: CloudRefused naming ``what`` and the command."""
        self._print(argv)
        sys.stdout.flush()
        code = subprocess.run(list(argv), cwd=self.cwd, check=False).returncode
        if code != 0:
            raise CloudRefused(f"{what} failed (exit {code}): {shell_command(argv)}")

    def capture(self, argv: list[str] | tuple[str, ...], what: str) -> str:
        result = self.call(argv)
        if result.code != 0:
            raise CloudRefused(f"{what} failed (exit {result.code}): {shell_command(argv)}")
        return result.stdout.strip()

    def json(self, argv: list[str] | tuple[str, ...], what: str) -> Any:
        text = self.capture([*argv, "-o", "json"], what)
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            raise CloudRefused(f"{what}: az printed no JSON: {shell_command(argv)}") from None

    def show(self, argv: list[str] | tuple[str, ...], output: str = "json") -> dict[str, Any] | None:
        """The resource as Azure holds it, or None when it does not exist."""
        command = [*argv, "-o", output]
        result = self.call(command, quiet=True)
        if result.code != 0:
            if any(marker in result.stderr for marker in NOT_FOUND_MARKERS):
                return None
            raise CloudRefused(f"{shell_command(command)} failed (exit {result.code}): {result.said()}")
        try:
            data = yaml.safe_load(result.stdout) if output == "yaml" else json.loads(result.stdout or "null")
        except (ValueError, yaml.YAMLError):
            raise CloudRefused(f"{shell_command(command)}: could not read its {output} output") from None
        return data if isinstance(data, dict) else None
