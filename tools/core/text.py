"""Words for people: counts that agree with their noun."""

from __future__ import annotations


def counted(number: int, noun: str) -> str:
    """``1 step``, ``2 steps``, ``0 errors`` (the nouns printed here take a plain -s)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
