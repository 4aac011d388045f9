"""The tools' structured results: their output schemas, as MCP clients see them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    # The server's JSON may grow fields; the schema names the ones a caller relies on.
    model_config = ConfigDict(extra="allow")


class SessionInfo(_Out):
    id: str
    title: str
    status: str
    repo: str = Field(description="The repository's registered name.")
    branch: str
    worktree: str
    agent: str
    error: str | None = None
    parent: str | None = Field(None, description="The session that started it, if any.")
    summary: str | None = Field(
        None, description="The end of its last turn's answer (results of wait/status only)."
    )


class SessionsOut(_Out):
    sessions: list[SessionInfo]


class NewSessionOut(_Out):
    sessions: list[SessionInfo] = Field(description="One, or one per attempt.")
    group: str | None = Field(None, description="The attempts group (attempts > 1).")


class WaitOut(_Out):
    sessions: list[SessionInfo]
    timed_out: bool = Field(description="True when the timeout passed first.")
    still_working: list[str] = Field(description="Ids still queued, starting or running.")


class DiffOut(_Out):
    id: str
    format: str
    text: str
    truncated: bool = Field(description="True when the text was cut at max_bytes.")
    note: str | None = None


class Answer(_Out):
    """A verb's answer as pa's API gives it."""

    data: dict[str, Any]
