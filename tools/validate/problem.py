"""The problem record layers B (azure-ai-ml loaders) and C (JSON schemas) return: a key path and one short line.

The validator turns each into a finding, adding the file, the line of the key path and the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.core.yamlio import format_key_path


@dataclass(frozen=True, order=True)
class Problem:
    """One problem at ``key_path`` (``()`` for the whole document), e.g. ``(("jobs", "x", "inputs"), "...")``.

    For a missing required key the path ends with that key (which is not in the document): look up the line of
    the longest prefix that exists.
    """

    key_path: tuple[str | int, ...]
    message: str

    @property
    def key(self) -> str:
        """Dotted form, list indices in brackets: ``jobs.x.inputs[0]``."""
        return format_key_path(self.key_path)

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key_path else self.message
