"""Plans (issue 15 §1): run a plan file, list plans, show, stop and resume one.

The server's loop drives running plans (``ServerState._drive_plans``); with no loop
(the in-process transport) these routes drive them themselves, so `pa plan show` moves
a plan on as `pa ls` moves sessions on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.server.routes._request import server_state, thread_app
from parallel_agents.sessions import plan_runner, plans
from parallel_agents.sessions.orchestrator import App

router = APIRouter(prefix="/api/v1")


class NewPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="The plan file's TOML (docs/plan.schema.json).")
    source: str | None = Field(None, description="The file's path, for messages.")
    folder: str | None = Field(None, description="Where relative repo paths start.")
    cwd: str | None = Field(None, description="Tasks naming no repo use the repo around it.")
    name: str | None = Field(
        None, description="The plan's name (default: the file's, else plan-<id>)."
    )


def _kick(request: Request, app: App) -> None:
    """Drive the plans now: through the loop when one runs, else here."""
    if not server_state(request).plans_soon():
        plan_runner.drive(app)


@router.post("/plans", status_code=201)
def run_plan(request: Request, body: NewPlan) -> dict[str, Any]:
    app = thread_app(request)
    g = plans.run(
        app,
        body.text,
        source=body.source or "the plan file",
        folder=Path(body.folder) if body.folder else None,
        cwd=Path(body.cwd) if body.cwd else None,
        name=body.name,
    )
    _kick(request, app)
    return plans.show(app, g.id)


@router.get("/plans")
def list_plans(request: Request) -> dict[str, Any]:
    app = thread_app(request)
    if not server_state(request).plans_soon():
        plan_runner.drive(app)
    return {"plans": plans.listing(app)}


@router.get("/plans/{ref}")
def show_plan(request: Request, ref: str) -> dict[str, Any]:
    app = thread_app(request)
    plans.plan_group(app, ref)  # a clear 404 before any work
    if not server_state(request).plans_soon():
        plan_runner.drive(app)
    return plans.show(app, ref)


@router.post("/plans/{ref}/stop")
def stop_plan(request: Request, ref: str) -> dict[str, Any]:
    return plans.stop(thread_app(request), ref)


@router.post("/plans/{ref}/resume")
def resume_plan(request: Request, ref: str) -> dict[str, Any]:
    app = thread_app(request)
    out = plans.resume(app, ref)
    _kick(request, app)
    return out
