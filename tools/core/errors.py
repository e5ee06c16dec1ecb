"""User-facing errors: one precise line (file:line: key.path: message) and a non-zero exit, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input. The CLI prints ``str(error)`` as one line and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class CloudRefused(Exception):
    """The cloud refused or failed a step (an `az` command exited non-zero, a job ended Failed, a deployment did not
    reach Succeeded): not a mistake in the user's input. The CLI prints one line and exits 1."""

    exit_code = 1


def location(path: str, line: int | None = None, key: str | None = None) -> str:
    """Format the ``file:line: key.path`` prefix of a one-line message (line is 1-based)."""
    where = path if line is None else f"{path}:{line}"
    return f"{where}: {key}" if key else where
