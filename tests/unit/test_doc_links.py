"""Every link of the README and the docs leads somewhere in the repository: a file that exists
and, after `#`, a heading of that file (as GitHub names headings' anchors). Nothing may point
outside the repository, neither by a web address nor by a relative path that climbs out of it.
"""

import re
from pathlib import Path

import pytest

from relanalytics_pipeline.settings import PROJECT_ROOT

PAGES = sorted(
    [PROJECT_ROOT / "README.md", PROJECT_ROOT / "benchmarks" / "RESULTS.md"]
    + list((PROJECT_ROOT / "docs").glob("*.md"))
)
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`+[^`]*`+")
# [text](target) and ![alt](target), with an optional "title" after the target.
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, where links and headings live."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, code marks and punctuation dropped (letters,
    digits, `_`, `-` and spaces kept, in any script), each space a hyphen."""
    text = heading.lower().replace("`", "")
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    return "".join(c for c in text if c.isalnum() or c in "_- ").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path, root: Path) -> list[str]:
    """Each link of `page` that leads nowhere in `root`, with the reason."""
    problems = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if SCHEME.match(target):
                problems.append(f"{target}: points outside the repository")
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.is_relative_to(root.resolve()):
                problems.append(f"{target}: points outside the repository")
            elif not linked.exists():
                problems.append(f"{target}: no such file")
            elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
                problems.append(f"{target}: no heading with the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_link_leads_to_a_file_and_heading_of_the_repository(page):
    assert broken_links(page, PROJECT_ROOT) == []


def test_the_readme_links_every_docs_page():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    linked = {Path(target.partition("#")[0]).name for target in LINK.findall(readme)}
    pages = {page.name for page in (PROJECT_ROOT / "docs").glob("*.md")}
    assert pages - linked == set()


def test_slug_follows_github():
    assert slug("Nights, backfills and crashes") == "nights-backfills-and-crashes"
    assert slug("Per-record KPIs (`relationship_kpis`)") == "per-record-kpis-relationship_kpis"
    assert slug("CRM exports: Dynamics 365 (Dataverse) and Salesforce") == (
        "crm-exports-dynamics-365-dataverse-and-salesforce"
    )
    assert slug("Health deltas and the health history") == "health-deltas-and-the-health-history"


def test_broken_links_are_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Page A\n\n## Same\n\n## Same\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#page-a) [second](docs/a.md#same-1) [self](#top) [gone](docs/b.md)\n"
        "[anchor](docs/a.md#nowhere) [out](../shared/spec.md) [web](https://example.com)\n"
        "`[in code](docs/missing.md)`\n\n```\n[in a block](docs/missing.md)\n```\n\n# Top\n",
        encoding="utf-8",
    )
    assert broken_links(page, tmp_path) == [
        "docs/b.md: no such file",
        "docs/a.md#nowhere: no heading with the anchor #nowhere",
        "../shared/spec.md: points outside the repository",
        "https://example.com: points outside the repository",
    ]
