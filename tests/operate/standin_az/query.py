"""The subset of JMESPath (https://jmespath.org/specification.html) that `az --query` evaluates for the tools:
field paths (`status`, `outputs.registered_model.version`, `traffic."green"`), list projections (`[].id`),
backtick literals (`` `0` ``, `` `"green"` ``), comparisons (`>`, `<`, `==`, `!=`), `&&` and `||` with JMESPath's
truthiness (false, null, "", [] and {} are false; `a || b` is a when a is true, `a && b` is b when a is true)."""

from __future__ import annotations

import json
import re
from typing import Any

TOKEN = re.compile(r'\s*(`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*"|\|\||&&|==|!=|>=|<=|>|<|\[\]|\.|[A-Za-z_][A-Za-z0-9_-]*)')


def tokens(expression: str) -> list[str]:
    out, i = [], 0
    while i < len(expression):
        match = TOKEN.match(expression, i)
        if not match:
            if expression[i:].strip():
                raise ValueError(f"unsupported query {expression!r} at {expression[i:]!r}")
            break
        out.append(match.group(1))
        i = match.end()
    return out


def truthy(value: Any) -> bool:
    return value not in (None, False, "", [], {})


class Parser:
    def __init__(self, expression: str, data: Any) -> None:
        self.words, self.at, self.data = tokens(expression), 0, data

    def peek(self) -> str | None:
        return self.words[self.at] if self.at < len(self.words) else None

    def take(self) -> str:
        self.at += 1
        return self.words[self.at - 1]

    def parse_or(self) -> Any:
        left = self.parse_and()
        while self.peek() == "||":
            self.take()
            right = self.parse_and()
            left = left if truthy(left) else right
        return left

    def parse_and(self) -> Any:
        left = self.parse_compare()
        while self.peek() == "&&":
            self.take()
            right = self.parse_compare()
            left = right if truthy(left) else left
        return left

    def parse_compare(self) -> Any:
        left = self.parse_path()
        if self.peek() in (">", "<", ">=", "<=", "==", "!="):
            op, right = self.take(), self.parse_path()
            if op == "==":
                return left == right
            if op == "!=":
                return left != right
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
                return None  # ordering compares numbers only
            return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]
        return left

    def parse_path(self) -> Any:
        word = self.take()
        if word.startswith("`"):
            return json.loads(word[1:-1])
        value = self.data
        if word == "[]":
            return self.projection(value)
        value = self.field(value, word)
        while self.peek() in (".", "[]"):
            if self.take() == "[]":
                return self.projection(value)
            value = self.field(value, self.take())
        return value

    def projection(self, value: Any) -> Any:
        rest: list[str] = []
        while self.peek() == ".":
            self.take()
            rest.append(self.take())
        if not isinstance(value, list):
            return None
        out = []
        for item in value:
            for name in rest:
                item = self.field(item, name)
            if item is not None:
                out.append(item)
        return out

    @staticmethod
    def field(value: Any, word: str) -> Any:
        name = json.loads(word) if word.startswith('"') else word
        return value.get(name) if isinstance(value, dict) else None


def query(data: Any, expression: str | None) -> Any:
    if not expression:
        return data
    return Parser(expression, data).parse_or()
