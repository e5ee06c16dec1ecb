"""Small helpers the rule modules share: walking a spec's values, integer tests, binding detection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every scalar leaf of ``node`` with its key path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))
    else:
        yield path, node


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_expression(value: Any) -> bool:
    """A ``${{...}}`` value (a binding or runtime expression) that only Azure resolves."""
    return isinstance(value, str) and value.strip().startswith("${{")


def get_path(data: Any, key: tuple) -> Any:
    for part in key:
        data = data.get(part) if isinstance(data, dict) else None
    return data
