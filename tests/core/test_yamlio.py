"""tools.core.yamlio: line numbers kept, and every hostile input ends in one YamlProblem with a line."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.core import yamlio
from tools.core.yamlio import YamlProblem, decode, line_of, load_file, load_lined


def _laughs(levels: int = 9) -> str:
    """A "billion laughs": a few hundred bytes whose aliases expand to 9**levels strings."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def problem(text: str) -> YamlProblem:
    with pytest.raises(YamlProblem) as caught:
        load_lined(text)
    return caught.value


def test_lines_and_key_paths_are_kept() -> None:
    data = load_lined("a:\n  b:\n    - x\n    - y: 1\n")
    assert line_of(data, ("a", "b", 1, "y")) == 4 and line_of(data, ("a",)) == 1


def test_anchors_and_merge_keys_azure_accepts_still_load() -> None:
    data = load_lined("base: &b {x: 1, y: [1, 2]}\nd:\n  <<: *b\n  z: 2\ncopy: *b\n")
    assert data["d"] == {"x": 1, "y": [1, 2], "z": 2} and data["copy"] == {"x": 1, "y": [1, 2]}


def test_billion_laughs_is_refused_at_the_alias_that_crosses_the_budget() -> None:
    text = _laughs()
    assert len(text) < 500
    found = problem(text)
    assert "aliases expand to more than" in str(found) and found.line in range(2, 10)


def test_billion_laughs_memory_stays_bounded(tmp_path: Path) -> None:
    """In a child capped at 1 GiB of address space: expanding 9**9 strings would need far more."""
    (tmp_path / "bomb.yaml").write_text(_laughs())
    code = textwrap.dedent(
        """
        import sys
        from tools.core.yamlio import YamlProblem, load_file, plain
        try:
            plain(load_file(sys.argv[1]))
        except YamlProblem as problem:
            print(problem.line, problem)
        """
    )

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "bomb.yaml")],
        capture_output=True, text=True, timeout=60, preexec_fn=cap,  # noqa: PLW1509 - the cap is the point
    )
    assert proc.returncode == 0, proc.stderr
    assert "aliases expand" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "text", ["a: " + "[" * 1000 + "]" * 1000, "".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "v\n"]
)
def test_deep_nesting_is_one_problem(text: str) -> None:
    found = problem(text)
    assert f"nested more than {yamlio.MAX_DEPTH} levels" in str(found)


def test_nesting_within_the_bound_loads() -> None:
    assert load_lined("a: " + "[" * 50 + "1" + "]" * 50)["a"] is not None


@pytest.mark.parametrize(
    ("text", "path", "line", "shown"),
    [
        ("name: x\ntags:\n  team: a\n  1: b\n", ("tags", "1"), 4, "'1' is read as an int"),
        ("tags:\n  yes: b\n", ("tags", "yes"), 2, "'yes' is read as a bool"),
        ("a:\n  b:\n    2024-01-01: x\n", ("a", "b", "2024-01-01"), 3, "read as a date"),
        ("a:\n  ? [1, 2]\n  : x\n", ("a", "?"), 2, "not a mapping or a list"),
    ],
)
def test_non_string_keys_name_their_line_and_path(text: str, path: tuple, line: int, shown: str) -> None:
    found = problem(text)
    assert (found.line, found.key_path) == (line, path) and shown in str(found)


def test_duplicate_keys_keep_their_path() -> None:
    found = problem("a:\n  b: 1\n  b: 2\n")
    assert (found.line, found.key_path) == (3, ("a", "b")) and "first defined on line 2" in str(found)


def test_nul_characters_are_refused() -> None:
    assert problem('a: 1\nb: "x\\0y"\n').line == 2
    with pytest.raises(YamlProblem) as caught:
        decode(b"a: 1\nb: x\x00\n")
    assert (caught.value.line, caught.value.column) == (2, 5)


def test_bad_bytes_are_named_by_line_and_column() -> None:
    with pytest.raises(YamlProblem) as caught:
        decode(b"a: 1\nname: caf" + b"\xe9\n")
    assert (caught.value.line, caught.value.column) == (2, 10)
    assert "not UTF-8: byte 0xe9 at column 10" in str(caught.value)
    assert decode(b"\xef\xbb\xbfa: 1\n") == "a: 1\n"  # a BOM is dropped


def test_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlio, "MAX_BYTES", 100)
    (tmp_path / "big.yaml").write_text("k: " + "x" * 200 + "\n")
    with pytest.raises(YamlProblem, match="read up to 100 bytes"):
        load_file(tmp_path / "big.yaml")


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a: *nope\n", "---\na: 1\n---\nb: 2\n", "a:\tb: c\n", "\t- x"])
def test_malformed_yaml_is_a_problem_with_a_line(text: str) -> None:
    found = problem(text)
    assert found.line >= 1 and str(found).startswith("YAML syntax")


_EVERY_SCALAR = textwrap.dedent("""\
    $schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
    ints: [1, -2, 0x1f, 0o17, 1_000, "3", '4']
    floats: [1.5, -2e3, .inf, -.Inf, .nan, 1e-3]
    bools: [true, False, yes, NO, on, off, "true"]
    nulls: [null, ~, Null]
    blank:
    when: [2024-01-02, 2024-01-02T03:04:05Z, "2024-01-02"]
    text: |
      multi
      line
    folded: >-
      one
      two
    empty: ""
    nested:
      - {a: 1, b: [x, {c: d}]}
      -
        e: f
    ? plain key
    : value
    """)


@pytest.mark.parametrize("text", [
    _EVERY_SCALAR,
    "",
    "# only a comment\n",
    "just a string\n",
    "- a\n- b\n",
    "base: &b {x: 1}\nuse: *b\n",  # anchors and aliases: the full loader
    "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",  # a merge key: the full loader
    "a: !!str 1\nb: !!int '2'\n",  # explicit tags: the full loader
])  # fmt: skip
def test_one_pass_builder_reads_as_the_full_loader_does(text: str) -> None:
    """load_lined's one-pass event builder gives the same values, types, key order and lines as PyYAML's
    composer and constructor (with the bounds checked first), or leaves the text to them."""
    import yaml

    def same(a: object, b: object) -> bool:
        assert type(a) is type(b), (a, b)
        if isinstance(a, yamlio.LinedDict):
            assert isinstance(b, yamlio.LinedDict)
            assert (a.line, a.key_lines, list(a)) == (b.line, b.key_lines, list(b))
            return all(same(a[key], b[key]) for key in a)
        if isinstance(a, yamlio.LinedList):
            assert isinstance(b, yamlio.LinedList)
            assert (a.line, a.item_lines, len(a)) == (b.line, b.item_lines, len(b))
            return all(same(x, y) for x, y in zip(a, b, strict=True))
        return a == b or (a != a and b != b)  # NaN

    yamlio._check_bounds(text)
    expected = yaml.load(text, Loader=yamlio._LinedLoader)  # noqa: S506 - a SafeLoader subclass
    assert same(load_lined(text), expected)


def test_one_pass_builder_leaves_unusual_yaml_to_the_full_loader() -> None:
    with pytest.raises(yamlio._Unusual):
        yamlio._build("a: &x 1\nb: *x\n")
    with pytest.raises(yamlio._Unusual):
        yamlio._build("a: 1\na: 2\n")  # the full loader words the duplicate with its path
    assert yamlio._build(_EVERY_SCALAR)["ints"][2] == 31


@pytest.mark.parametrize(("text", "line", "path", "words"), [
    ("a: 1\nb: 2024-13-45\n", 2, ("b",), "not a valid one (month must be in 1..12)"),
    ("a:\n  - x\n  - 2024-02-30 10:00:00\n", 3, ("a", 1), "date or time"),
    ("2024-13-45: 1\n", 1, ("2024-13-45",), "date or time"),
    ("a: !!bool maybe\n", 1, ("a",), "'maybe' cannot be read as !!bool"),
    ("x:\n  y: !!int abc\n", 2, ("x", "y"), "'abc' cannot be read as !!int"),
    ("x: !!float abc\n", 1, ("x",), "cannot be read as !!float"),
    ("--- !!seq\na: 1\n", 1, (), "the tag !!seq cannot be put on a mapping"),
    ("a: !!map [1, 2]\n", 1, ("a",), "the tag !!map cannot be put on a list"),
    ("a: !!seq x\n", 1, ("a",), "!!seq cannot be put on"),
    ("a: " + "9" * 5000 + "\n", 1, ("a",), "past Python's int-string limit"),
    ("a:\n  b: [1, -" + "1" * 4301 + "]\n", 2, ("a", "b", 1), "past Python's int-string limit"),
    ("a: 0x" + "f" * 5000 + "\n", 1, ("a",), "past Python's int-string limit"),  # loads, but no str() of it would
    ("base: &b {x: !!int abc}\nd:\n  <<: *b\n", 1, ("base", "x"), "cannot be read as !!int"),
])  # fmt: skip
def test_values_yaml_cannot_build_are_one_problem_with_line_and_path(
    text: str, line: int, path: tuple, words: str
) -> None:
    """Past the parser: PyYAML's constructors raise ValueError/KeyError/AttributeError on these; each is one
    YamlProblem naming the value's line and key path, with the value cut short in the message."""
    found = problem(text)
    assert (found.line, found.key_path) == (line, path), (found.line, found.key_path, str(found))
    assert words in str(found) and len(str(found)) < 300


def test_integers_within_the_limit_and_non_finite_floats_still_load() -> None:
    data = load_lined("a: " + "9" * 4300 + "\nb: .nan\nc: -.inf\nd: 0x" + "f" * 100 + "\n")
    assert len(str(data["a"])) == 4300 and data["b"] != data["b"] and data["c"] == float("-inf")


def test_more_nodes_than_the_bound_is_one_problem_at_the_crossing_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys, values and items are bounded (MAX_NODES), on both the one-pass builder and the full loader's path."""
    monkeypatch.setattr(yamlio, "MAX_NODES", 50)
    under = "".join(f"k{i}: {i}\n" for i in range(24))  # 1 mapping + 48 scalars
    assert len(load_lined(under)) == 24
    found = problem(under + "k24: 24\n")  # node 50 is key k24 ... 51 its value
    assert found.line == 25 and "more than 50 keys, values and items" in str(found)
    found = problem("a: &a 1\n" + under + "k24: *a\n")  # an anchor: the full loader's bound check
    assert found.line == 25 and "more than 50" in str(found)
