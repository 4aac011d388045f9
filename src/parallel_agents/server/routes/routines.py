"""Routines (issue 17): add, list, show, pause, resume, remove, run now, history.

The server's loop starts the runs that come due (``ServerState._drive_routines``); with
no loop (the in-process transport) nothing runs on a schedule, `run NAME` still does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import routine_api, routines

router = APIRouter(prefix="/api/v1")


class NewRoutine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    prompt: str = Field(description="May use {date}, {branch}, {commit}, {pr_number} and {text}.")
    cron: list[str] = Field(default_factory=list, description="Cron expressions.")
    tz: str | None = Field(None, description="The cron triggers' IANA zone (default: local).")
    every: list[str] = Field(default_factory=list, description="Intervals: 30m, 2h, 1d.")
    agent: str | None = None
    cmd: list[str] | None = None
    model: str | None = None
    repo: str | None = None
    cwd: str | None = None
    base: str | None = None
    missed: str = "once"
    overlap: str = "skip"
    on_push: list[str] = Field(default_factory=list, description="Branches: a run per new commit.")
    on_pr: bool = Field(False, description="A run per new pull request (through gh).")
    timeout: str | None = Field(None, description="Stop a run's turn after it: 30m, 2h.")
    auto_merge: bool = Field(False, description="Merge a done run when the repo's check passes.")
    max_unreviewed: int = Field(
        0, description="Skip due times while this many runs wait unread (0: no limit)."
    )
    api: bool = Field(False, description="An HTTP trigger; its token is in the answer, once.")


@router.post("/routines", status_code=201)
def add_routine(request: Request, body: NewRoutine) -> dict[str, Any]:
    app = thread_app(request)
    token, api_hash = routine_api.new_token() if body.api else (None, None)
    r = routines.add(
        app, body.name, body.prompt, cron=body.cron, tz=body.tz, every=body.every,
        agent=body.agent, cmd=body.cmd, model=body.model, repo=body.repo,
        cwd=Path(body.cwd) if body.cwd else None, base=body.base, missed=body.missed,
        overlap=body.overlap, on_push=body.on_push, on_pr=body.on_pr, timeout=body.timeout,
        auto_merge=body.auto_merge, max_unreviewed=body.max_unreviewed, api_hash=api_hash,
    )
    out = routines.show(app, r.name)
    if token is not None:
        out["token"] = token  # the only time it is ever shown
    return out


@router.get("/routines")
def list_routines(request: Request) -> dict[str, Any]:
    return {"routines": routines.listing(thread_app(request))}


@router.get("/routines/{name}")
def show_routine(request: Request, name: str) -> dict[str, Any]:
    return routines.show(thread_app(request), name)


@router.post("/routines/{name}/pause")
def pause_routine(request: Request, name: str) -> dict[str, Any]:
    return routines.pause(thread_app(request), name)


@router.post("/routines/{name}/resume")
def resume_routine(request: Request, name: str) -> dict[str, Any]:
    return routines.resume(thread_app(request), name)


@router.delete("/routines/{name}")
def remove_routine(request: Request, name: str) -> dict[str, Any]:
    return routines.remove(thread_app(request), name)


@router.post("/routines/{name}/run")
def run_routine(request: Request, name: str) -> dict[str, Any]:
    return routines.run_now(thread_app(request), name)


@router.get("/routines/{name}/history")
def routine_history(request: Request, name: str) -> dict[str, Any]:
    return {"runs": routines.history(thread_app(request), name)}
