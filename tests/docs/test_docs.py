"""The README stays a newcomer's page and every relative link in it and in docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.core.repo import REPO_ROOT

README = REPO_ROOT / "README.md"
PAGES = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]
# [text](target) outside code spans; a target with a scheme or a bare #anchor is not a file link.
LINK = re.compile(r"(?<!`)\[[^\]]*\]\(([^)\s]+)\)")
MAX_README_LINES = 200


def _relative_links(page: Path) -> list[tuple[int, str]]:
    links = []
    in_fence = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            links.append((number, target))
    return links


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < MAX_README_LINES, f"README.md has {lines} lines; reference belongs in docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for number, target in _relative_links(page):
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(f"{page.relative_to(REPO_ROOT)}:{number}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {target.split("#", 1)[0] for _, target in _relative_links(README)}
    orphans = [page.name for page in PAGES[1:] if f"docs/{page.name}" not in linked]
    assert not orphans, f"docs pages the README's index does not link: {orphans}"


def test_link_finder_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("see [a](missing.md) and [b](https://example.org) and `[c](code.md)`\n", encoding="utf-8")
    assert _relative_links(page) == [(1, "missing.md")]
