"""A reviewer agent's comments on a session (issue 15 §3): start one, collect its answer,
list the comments, send them to the author as one follow-up."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import reviewer as reviewer_service
from parallel_agents.sessions.views import session_json

router = APIRouter(prefix="/api/v1")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewerBody(_Body):
    agent: str | None = Field(default=None, max_length=100)
    cmd: list[str] | str | None = Field(
        default=None, description="Program of the command agent: argv list, or split like a shell."
    )
    model: str | None = Field(default=None, max_length=200)
    timeout: float | None = Field(default=None, gt=0, le=86_400)
    env: dict[str, str] | None = Field(
        default=None, description="Extra environment for the reviewer (kept in a 0600 file)."
    )


class SendBody(_Body):
    ids: list[int] | None = Field(default=None, max_length=1000)


class MarkBody(_Body):
    ids: list[int] = Field(max_length=1000)


@router.post("/sessions/{sid}/reviewer")
def start_reviewer(request: Request, sid: str, body: ReviewerBody | None = None) -> dict[str, Any]:
    """Start a reviewer agent on the session's diff; its answer is read by ``collect``."""
    from parallel_agents.cmdline import split_cmd

    b = body or ReviewerBody()
    cmd = split_cmd(b.cmd) if isinstance(b.cmd, str) else b.cmd
    author, rs = reviewer_service.start(
        thread_app(request),
        sid,
        agent=b.agent,
        cmd=cmd,
        model=b.model,
        timeout=b.timeout,
        env=b.env,
    )
    return {"session": author.id, "review": session_json(rs)}


@router.post("/sessions/{sid}/reviewer/{rid}/collect")
def collect(request: Request, sid: str, rid: str) -> dict[str, Any]:
    return reviewer_service.collect(thread_app(request), sid, rid)


@router.post("/sessions/{sid}/reviewer/collect")
def collect_pending(request: Request, sid: str) -> dict[str, Any]:
    return reviewer_service.collect_pending(thread_app(request), sid)


@router.get("/sessions/{sid}/review-comments")
def comments(request: Request, sid: str, unsent: bool = False) -> dict[str, Any]:
    return reviewer_service.comments(thread_app(request), sid, unsent=unsent)


@router.post("/sessions/{sid}/review-comments/send")
def send(request: Request, sid: str, body: SendBody | None = None) -> dict[str, Any]:
    return reviewer_service.send(thread_app(request), sid, (body or SendBody()).ids)


@router.post("/sessions/{sid}/review-comments/sent")
def mark_sent(request: Request, sid: str, body: MarkBody) -> dict[str, Any]:
    return reviewer_service.mark_sent(thread_app(request), sid, body.ids)
