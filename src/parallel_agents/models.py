"""Plain data: repos, sessions, turns, events and the session status machine."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from parallel_agents.errors import Conflict


class Status(enum.StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    NEEDS_INPUT = "needs_input"
    IDLE = "idle"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    MERGED = "merged"
    DISCARDED = "discarded"

    @property
    def live(self) -> bool:
        """Still owns a worktree the person may want to review or continue.

        The one definition of a live session: `pa ls`, GET /api/v1/sessions (without
        ``all``) and the dashboard's "live" filter (through GET /api/v1/statuses)."""
        return self not in (Status.MERGED, Status.DISCARDED)

    @property
    def active(self) -> bool:
        """An agent process is (or is about to be) working."""
        return self in (Status.QUEUED, Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT)


S = Status
# Which status may follow which. Everything else is a bug or a race and is refused.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.QUEUED: frozenset({S.STARTING, S.STOPPED, S.FAILED, S.DISCARDED}),
    S.STARTING: frozenset({S.QUEUED, S.RUNNING, S.FAILED, S.STOPPED, S.INTERRUPTED, S.IDLE}),
    S.RUNNING: frozenset({S.IDLE, S.FAILED, S.STOPPED, S.NEEDS_INPUT, S.INTERRUPTED}),
    S.NEEDS_INPUT: frozenset({S.RUNNING, S.IDLE, S.FAILED, S.STOPPED, S.INTERRUPTED}),
    S.IDLE: frozenset({S.QUEUED, S.STARTING, S.RUNNING, S.MERGED, S.DISCARDED, S.NEEDS_INPUT}),
    S.FAILED: frozenset({S.QUEUED, S.STARTING, S.MERGED, S.DISCARDED}),
    S.STOPPED: frozenset({S.QUEUED, S.STARTING, S.MERGED, S.DISCARDED}),
    S.INTERRUPTED: frozenset({S.QUEUED, S.STARTING, S.MERGED, S.DISCARDED, S.FAILED}),
    S.MERGED: frozenset({S.DISCARDED, S.QUEUED, S.STARTING}),
    S.DISCARDED: frozenset({S.IDLE}),  # pa restore
}


def check_transition(old: Status, new: Status) -> None:
    if old == new:
        return
    if new not in TRANSITIONS[old]:
        raise Conflict(f"a session cannot go from {old.value} to {new.value}")


class Signal(enum.StrEnum):
    """What an interactive session's TUI says it does (a hook, or its pane's text)."""

    RUNNING = "running"
    NEEDS_INPUT = "needs_input"
    IDLE = "idle"


SIGNAL_STATUS = {
    Signal.RUNNING: Status.RUNNING,
    Signal.NEEDS_INPUT: Status.NEEDS_INPUT,
    Signal.IDLE: Status.IDLE,
}


class EventKind(enum.StrEnum):
    MESSAGE = "message"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    COMMAND = "command"
    FILE_CHANGE = "file_change"
    USAGE = "usage"
    STATUS = "status"
    ERROR = "error"
    RESULT = "result"
    RAW = "raw"
    OUTPUT = "output"  # plain output of the `command` agent: a run of lines, "\n" between
    ATTENTION = "attention"
    CHECK = "check"
    CONFLICT = "conflict"
    ROLLBACK = "rollback"  # the worktree was put back to an earlier turn's checkpoint


@dataclass
class Repo:
    id: int
    name: str
    path: str
    base: str | None
    created_at: float


@dataclass
class Session:
    id: str
    title: str
    repo_id: int
    repo_name: str
    branch: str
    base_ref: str
    base_commit: str
    worktree: str
    agent: str
    model: str | None
    status: Status
    agent_session_id: str | None
    created_at: float
    updated_at: float
    cmd: list[str] | None = None
    interactive: bool = False
    error: str | None = None
    unread: bool = False
    turns: int = 0
    cost_usd: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["status"] = self.status.value
        return d


@dataclass
class Turn:
    session_id: str
    n: int
    prompt: str
    started_at: float | None
    ended_at: float | None
    exit_code: int | None
    status: str
    error: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Event:
    session_id: str
    seq: int
    turn: int
    kind: str
    payload: dict[str, Any]
    raw: str | None
    ts: float
    id: int = 0  # global, increasing: the SSE event id

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)
