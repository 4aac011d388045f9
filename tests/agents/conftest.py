"""Fixtures for the adapter tests: the captured CLI output, fake binaries, turn contexts."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.agents.base import Agent, NormEvent, TurnContext, TurnState

# A context for after_exit where no files are involved.
NO_CTX = TurnContext(
    prompt="", worktree=Path("/nonexistent/pa"), session_dir=Path("/nonexistent/pa"), turn=1
)
MakeCtx = Callable[..., TurnContext]
FakeBin = Callable[..., str]

# Recorded from the real pinned CLIs by scripts/record-captures; they live in the repository.
CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"


@pytest.fixture
def captures() -> Path:
    # Missing captures are a broken checkout, never a reason to skip: fail loudly.
    if not CAPTURES.is_dir():
        pytest.fail(
            f"agent captures missing: {CAPTURES} (they are committed; restore them with "
            "git checkout, or re-record with scripts/record-captures)"
        )
    return CAPTURES


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME, and none of the user's agent variables, for every adapter test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in (
        "CODEX_HOME",
        "CLAUDE_CONFIG_DIR",
        "ANTHROPIC_API_KEY",
        "IS_SANDBOX",
        "DISABLE_AUTOUPDATER",
        "OPENCODE_DISABLE_AUTOUPDATE",
        "MSWEA_CONFIGURED",
        "MSWEA_SILENT_STARTUP",
    ):
        monkeypatch.delenv(var, raising=False)
    Agent._checked.clear()
    return home


def write_exe(path: Path, script: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_bin(tmp_path: Path) -> Callable[..., str]:
    """``fake_bin("claude")``: an executable stand-in; its absolute path (for ``binary``)."""

    def make(name: str, script: str = "#!/bin/sh\nexit 0\n") -> str:
        return str(write_exe(tmp_path / "bin" / name, script))

    return make


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., TurnContext]:
    worktree = tmp_path / "worktree"
    worktree.mkdir(exist_ok=True)
    session_dir = tmp_path / "session"

    def make(**kw: Any) -> TurnContext:
        base: dict[str, Any] = {
            "prompt": "create hello.txt",
            "worktree": worktree,
            "session_dir": session_dir,
            "turn": 1,
            "session_id": "s-test",
        }
        base.update(kw)
        return TurnContext(**base)

    return make


def capture_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def parse_all(
    agent: Agent, lines: Iterable[str], state: TurnState | None = None
) -> list[NormEvent]:
    """Feed lines like the supervisor does, with the state JSON-round-tripped between calls."""
    import json

    st: TurnState = {} if state is None else state
    out: list[NormEvent] = []
    for line in lines:
        out += agent.parse_line(line, st)
        copy = json.loads(json.dumps(st))
        st.clear()
        st.update(copy)
    return out


def kinds(events: Iterable[NormEvent]) -> list[str]:
    return [e.kind.value for e in events]


def of_kind(events: Iterable[NormEvent], kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in events if e.kind.value == kind]


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
