"""The inbox (issue 17): routine runs waiting for the person; marking them read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import inbox

router = APIRouter(prefix="/api/v1")


@router.get("/inbox")
def list_inbox(request: Request, all: bool = False, routine: str | None = None) -> dict[str, Any]:
    """Unread runs (``all``: every run with a session), newest first, and the unread count."""
    app = thread_app(request)
    runs = inbox.listing(app, everything=all, routine=routine)
    return {"runs": runs, "unread": sum(1 for r in runs if not r["read"])}


@router.get("/inbox/routines")
def routines_board(request: Request, runs: int = Query(5, ge=1, le=50)) -> dict[str, Any]:
    """The routines with their last runs' status, cost, diff size and read (the
    dashboard's Routines page)."""
    return {"routines": inbox.board(thread_app(request), runs)}


class Read(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(default_factory=list, description="Sessions (ids or prefixes).")
    all: bool = Field(False, description="Every unread run (of `routine` when given).")
    routine: str | None = None


@router.post("/inbox/read")
def read_inbox(request: Request, body: Read) -> dict[str, Any]:
    app = thread_app(request)
    return {"read": inbox.read(app, body.ids, everything=body.all, routine=body.routine)}
