"""The README and docs/ stay true to the repository: every relative link resolves (to a file, and
to a heading when it names one), and every repository path they name in `code` exists.

Docs are read by people who act on them; a link or a path left behind by a move sends them to
nothing. Placeholders (`hub/<capability>/`, `channels/<name>/`) and paths outside the repository
(`../shared/...`) or made at run time (`data/...`) are not checked.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP_LEVEL = ("hub/", "channels/", "knowledge/", "adapters/", "tests/", "bench/", "docs/", ".ci/")

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*|_(?=\W)|(?<=\W)_", "", heading.strip()).lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _links(doc: Path):
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        yield target


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path):
    broken = []
    for target in _links(doc):
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def _named_paths(doc: Path):
    for span in CODE_SPAN.findall(doc.read_text(encoding="utf-8")):
        for word in span.split():
            word = word.rstrip(".,;:)")
            if word.startswith(TOP_LEVEL) and not re.search(r"[<>{}*…|\[]|\.\.\.", word):
                yield word


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_named_paths_exist(doc: Path):
    # A module may be named without ".py" (`hub/store/models`), so the text holds whether it is a
    # module or a package.
    missing = sorted({p for p in _named_paths(doc) if not ((ROOT / p).exists() or (ROOT / f"{p}.py").exists())})
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_slug_follows_github():
    assert _slug("The inbound spool: one item never holds up the others") == "the-inbound-spool-one-item-never-holds-up-the-others"
    assert _slug("SCM/ERP back ends") == "scmerp-back-ends"
    assert _slug("Satisfaction surveys (CSAT)") == "satisfaction-surveys-csat"
    assert _slug("`servicehub kb eval` on the help centre") == "servicehub-kb-eval-on-the-help-centre"
