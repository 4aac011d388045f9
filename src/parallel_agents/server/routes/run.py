"""A session's run script (issue 16 §1): start it, stop it, its status and log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import workspace_run

router = APIRouter(prefix="/api/v1")


@router.get("/sessions/{sid}/run")
def run_status(request: Request, sid: str) -> dict[str, Any]:
    """Running?, pid, log and its tail, each port with its URL and whether it answers."""
    app = thread_app(request)
    return workspace_run.status(app.store, app.store.resolve_session(sid))


@router.post("/sessions/{sid}/run")
def run_start(request: Request, sid: str) -> dict[str, Any]:
    """Start the repo's run script in the session's worktree, detached."""
    app = thread_app(request)
    return workspace_run.start(app.store, app.store.resolve_session(sid))


@router.post("/sessions/{sid}/run/stop")
def run_stop(request: Request, sid: str) -> dict[str, Any]:
    """End the run script's whole process group."""
    app = thread_app(request)
    return workspace_run.stop(app.store, app.store.resolve_session(sid))
