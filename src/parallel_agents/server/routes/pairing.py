"""Pairing mode (issue 16 §5): the main checkout shows a session's files.

The server's loop keeps pairings in sync (``ServerState._sync_pairings``); with no loop
(the in-process transport) `pa pair status` syncs them itself, as `pa ls` moves
sessions on.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.server.routes._request import server_state, thread_app
from parallel_agents.sessions import pairing

router = APIRouter(prefix="/api/v1")


class StopPairing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session: str | None = Field(None, description="The paired session (default: the only one).")
    keep: bool = Field(False, description="Leave the temporary branch (with your commits).")


@router.post("/sessions/{sid}/pair", status_code=201)
def pair(request: Request, sid: str) -> dict[str, Any]:
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    return pairing.start(app.store, app.settings.home, s)


@router.get("/pairing")
def pair_status(request: Request, session: str | None = None) -> dict[str, Any]:
    app = thread_app(request)
    if not server_state(request).loop_running():
        pairing.sync_all(app.store, app.settings.home)
    return {"pairings": pairing.status(app.settings.home, session)}


@router.post("/pairing/stop")
def pair_stop(request: Request, body: StopPairing) -> dict[str, Any]:
    app = thread_app(request)
    return pairing.stop(app.settings.home, body.session, keep=body.keep)
