"""Citations of the project's documents resolve, and no citation of a document outside the repository remains.

Comments, docstrings and docs cite the project's own documents as ``docs/<name>.md#<anchor>`` (and markdown
files link to each other as ``[text](<name>.md#<anchor>)``). Every cited file must exist and every anchor must
be one that GitHub generates for a heading of that file. Citations of the design notes and the X-FM
specification that live beside the repository (section numbers, "example N") are gone: a clone has no such
files. Everything is read relative to this file; nothing outside the repository is opened.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED_DIRS = ("src", "tests", "benchmarks", "conf", "docs", "notebooks")
SCANNED_FILES = ("README.md", "dvc.yaml", "Makefile")
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".ipynb", ".txt", ".toml", ".cfg", ".json", ".sh"}
SKIPPED_DIRS = {"__pycache__", ".ipynb_checkpoints"}

# docs/<name>.md[#anchor] written from the repository root (not a path ending in docs/, e.g. tests/docs/).
DOC_CITATION = re.compile(r"(?<![\w/.-])docs/([\w./-]+?\.md)(?:#([\w-]+))?")
# [text](target) in markdown; targets that are URLs are not checked.
MARKDOWN_LINK = re.compile(r"\]\(([^()\s]+)\)")
# Citations of documents that are not in the repository.
FOREIGN_CITATIONS = {
    "specification name": re.compile(r"\bxfm_spec\b"),
    "design example": re.compile(r"\bDESIGN example\b"),
    "specification section": re.compile(r"\bspec(?:ification)? (?:section )?\d+(?:\.\d+)?\b"),
    "sibling directory": re.compile(r"\.\./shared/"),
}
FENCE = re.compile(r"^\s*(```|~~~)")
ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading's text: links and inline HTML reduced to their text, code
    backticks dropped, lowercased, every character but letters, digits, ``_``, ``-`` and spaces removed,
    spaces turned into ``-``. (Emphasis written with ``_`` keeps its underscores: avoid it in headings.)"""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def heading_anchors(markdown: str) -> set[str]:
    """Anchors of every ATX heading outside fenced code blocks; repeats get ``-1``, ``-2``... as on GitHub."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else ATX_HEADING.match(line)
        if match is None:
            continue
        anchor = github_anchor(match.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def scanned_files() -> list[Path]:
    """Text files of the scanned parts of the repository, this file excluded (it spells the patterns)."""
    files = [REPO / name for name in SCANNED_FILES if (REPO / name).is_file()]
    for directory in SCANNED_DIRS:
        for path in sorted((REPO / directory).rglob("*")):
            parts = path.relative_to(REPO).parts
            if any(p in SKIPPED_DIRS or p.startswith(".") or p.endswith(".egg-info") for p in parts):
                continue
            if path.is_file() and path.suffix in TEXT_SUFFIXES and path != Path(__file__).resolve():
                files.append(path)
    return files


def _anchors_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        cache[path] = heading_anchors(path.read_text(encoding="utf-8"))
    return cache[path]


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _broken(source: Path, line: int, target: Path, anchor: str | None, cache: dict[Path, set[str]]) -> str | None:
    """A message when ``target`` (``#anchor``) does not exist, else None."""
    where = f"{source.relative_to(REPO)}:{line}"
    if not target.is_file():
        return f"{where}: {target.relative_to(REPO) if target.is_relative_to(REPO) else target} does not exist"
    if anchor and anchor not in _anchors_of(target, cache):
        return f"{where}: no heading of {target.relative_to(REPO)} has the anchor #{anchor}"
    return None


def test_github_anchor_of_hand_made_headings():
    assert github_anchor("VQA") == "vqa"
    assert github_anchor("Fix: VQA decoder embeddings") == "fix-vqa-decoder-embeddings"
    assert github_anchor("Layers and dependency direction") == "layers-and-dependency-direction"
    assert github_anchor("NLVR2") == "nlvr2"
    assert github_anchor("Image-text retrieval (zero-shot)") == "image-text-retrieval-zero-shot"
    assert github_anchor("The `lm_cap_head` keys") == "the-lm_cap_head-keys"
    assert github_anchor("See [xfm.md](xfm.md#vqa) now") == "see-xfmmd-now"
    assert github_anchor("Top-1 / top-5, 100%") == "top-1--top-5-100"
    assert github_anchor("Change: relative position resize  ") == "change-relative-position-resize"


def test_heading_anchors_number_repeats_and_skip_code_blocks():
    markdown = "# Title\n## Setup\ntext # not a heading\n```\n## Inside code\n```\n### Setup\n#### Setup ##\n## C#\n"
    assert heading_anchors(markdown) == {"title", "setup", "setup-1", "setup-2", "c"}


def test_every_cited_document_and_anchor_exists():
    cache: dict[Path, set[str]] = {}
    problems = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8")
        for match in DOC_CITATION.finditer(text):
            target = REPO / "docs" / match.group(1)
            problems.append(_broken(path, _line(text, match.start()), target, match.group(2), cache))
        if path.suffix != ".md":
            continue
        for match in MARKDOWN_LINK.finditer(text):
            link = match.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", link):  # http:, https:, mailto:
                continue
            file_part, _, anchor = link.partition("#")
            if file_part and not file_part.endswith(".md"):
                continue
            target = (path.parent / file_part).resolve() if file_part else path
            problems.append(_broken(path, _line(text, match.start()), target, anchor or None, cache))
    problems = [p for p in problems if p]
    assert not problems, "broken citations:\n" + "\n".join(problems)


def test_citations_use_the_documents_of_the_repository():
    found = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8")
        for kind, pattern in FOREIGN_CITATIONS.items():
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(REPO)}:{_line(text, match.start())}: {kind}: {match.group(0)!r}")
    assert not found, "cite docs/xfm.md#<anchor> or docs/design.md#<anchor> instead:\n" + "\n".join(found)
