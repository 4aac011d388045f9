"""Issue 13: the agent protocol notes the adapters cite live in the repository.

Every ``docs/agent-protocols.md §N`` (or ``§N.M``) named in src/ or tests/ is a heading of
that file, and nothing cites the document that used to live outside the clone.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "agent-protocols.md"
AGENTS = ROOT / "src" / "parallel_agents" / "agents"

HEADING = re.compile(r"^#{1,6} §(\d+(?:\.\d+)*)\s", re.MULTILINE)
# The path, then one or more sections: "§1", "§1.8, §2.6 and §9", "§6/§7", across a line
# break inside a docstring or comment.
CITATION = re.compile(r"docs/agent-protocols\.md((?:[\s,/#]*(?:and\s+)?§\d+(?:\.\d+)*)+)")
SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
# The old citation forms. Spelled so that this file does not match them itself, nor the
# outside-folder check of tests/test_captures.py.
OLD = re.compile(r"reference\s§|\breference/agent-protocols|shared/+reference")
TEXT_SUFFIXES = {".py", ".pyi", ".md", ".txt", ".sh", ".toml", ".cfg", ".ini", ".json", ""}


def _sources() -> list[Path]:
    out = []
    for folder in ("src", "tests"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
                out.append(path)
    return out


def _headings() -> list[str]:
    return HEADING.findall(DOC.read_text(encoding="utf-8"))


def _citations() -> dict[str, set[str]]:
    """file (relative) -> sections it cites."""
    found: dict[str, set[str]] = {}
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in CITATION.finditer(text):
            found.setdefault(str(path.relative_to(ROOT)), set()).update(SECTION.findall(m[1]))
    return found


def test_every_cited_section_is_a_heading() -> None:
    headings = set(_headings())
    missing = {
        f"{name} §{sec}"
        for name, secs in _citations().items()
        for sec in secs
        if sec not in headings
    }
    assert missing == set()


def test_every_adapter_cites_its_section() -> None:
    """The adapters of real CLIs say where their protocol is written down; the pane
    matcher cites the screens it was built from."""
    cited = _citations()
    expected = {
        "claude.py": "1",
        "codex.py": "2",
        "gemini.py": "3",
        "aider.py": "4",
        "opencode.py": "5",
        "cursor.py": "6",
        "amp.py": "7",
        "mini.py": "8",
    }
    for module, section in expected.items():
        name = str((AGENTS / module).relative_to(ROOT))
        assert section in cited.get(name, set()), name
    tui = cited.get(str((AGENTS / "tui.py").relative_to(ROOT)), set())
    assert {"1.8", "2.6", "9"} <= tui


def test_headings_are_numbered_once() -> None:
    headings = _headings()
    assert len(headings) == len(set(headings))
    assert {str(n) for n in range(11)} <= set(headings)


def test_nothing_cites_the_outside_reference() -> None:
    # The two checks that forbid the old forms name them in their patterns.
    guards = {Path(__file__).resolve(), ROOT / "tests" / "test_captures.py"}
    offenders = []
    for path in _sources():
        if path in guards:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            if OLD.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n + 1}")
    assert offenders == []
