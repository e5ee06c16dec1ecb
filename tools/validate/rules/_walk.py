"""Small helpers the rule modules share: walking a spec's values, integer tests, binding detection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every scalar leaf of ``node`` with its key path, in document order (an explicit stack: rules walk every
    spec, and a recursive generator costs a frame per level per leaf)."""
    stack: list[tuple[tuple, Any]] = [(path, node)]
    pop, push = stack.pop, stack.append
    while stack:
        path, node = pop()
        if isinstance(node, dict):
            for key, value in reversed(node.items()):
                push(((*path, key), value))
        elif isinstance(node, list):
            for index in range(len(node) - 1, -1, -1):
                push(((*path, index), node[index]))
        else:
            yield path, node


def strings_with(node: Any, token: str, path: tuple = ()) -> list[tuple[tuple, str]]:
    """The string leaves of ``node`` that contain ``token``, with their key paths, in document order: what
    ``walk`` gives filtered, without building a path for every other leaf."""
    found: list[tuple[tuple, str]] = []
    trail = list(path)

    def visit(container: Any) -> None:
        for key, value in container.items() if isinstance(container, dict) else enumerate(container):
            if isinstance(value, str):
                if token in value:
                    found.append(((*trail, key), value))
            elif isinstance(value, (dict, list)):
                trail.append(key)
                visit(value)
                trail.pop()

    if isinstance(node, (dict, list)):
        visit(node)
    elif isinstance(node, str) and token in node:
        found.append((tuple(path), node))
    return found


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_expression(value: Any) -> bool:
    """A ``${{...}}`` value (a binding or runtime expression) that only Azure resolves."""
    return isinstance(value, str) and value.strip().startswith("${{")


def get_path(data: Any, key: tuple) -> Any:
    for part in key:
        data = data.get(part) if isinstance(data, dict) else None
    return data
