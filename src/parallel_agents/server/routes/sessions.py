"""The sessions: list, start, show, send, stop, discard, restore, rename, mark read.

A session's JSON comes from ``sessions.views`` (the one place that builds it).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.errors import PAError, UsageError
from parallel_agents.models import Status
from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import lineage, workspace_run  # issue 16 §1, issue 18
from parallel_agents.sessions.review import check_summaries
from parallel_agents.sessions.views import session_json, session_with_turns

router = APIRouter(prefix="/api/v1")


class NewSessions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str
    repo: str | None = Field(None, description="Registered repo name, or a path to a repo.")
    agent: str | None = None
    cmd: list[str] | str | None = Field(
        None, description="Program of the command agent: argv list, or split like a shell."
    )
    model: str | None = None
    base: str | None = None
    title: str | None = None
    timeout: float | None = Field(None, gt=0, description="Seconds per turn before a stop.")
    count: int = Field(1, ge=1, le=100, description="How many parallel sessions to start.")
    interactive: bool = False
    env: dict[str, str] | None = Field(
        None, description="Extra environment for the agent (kept in a 0600 file, never echoed)."
    )
    # issue 16 §4: start from existing work (at most one; count must be 1)
    from_branch: str | None = Field(None, description="Work on this existing branch.")
    from_pr: int | None = Field(None, ge=1, description="Start from this pull request (gh).")
    from_issue: int | None = Field(None, ge=1, description="Start from this issue (gh).")
    # issue 18: the session that starts these (a lead); caps mcp.max_depth, mcp.max_children
    parent: str | None = Field(None, description="Id of the parent session (a lead).")
    # issue 19: where its turns run (default: setting runtime.kind)
    runtime: Literal["local", "ray"] | None = Field(None, description="local or ray.")


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str


@router.get("/sessions", response_class=JSONResponse)
def list_sessions(
    request: Request,
    all: Annotated[bool, Query(description="Include merged and discarded.")] = False,
    status: Annotated[str | None, Query(description="Comma-separated statuses.")] = None,
    repo: Annotated[str | None, Query(description="Repo name or path.")] = None,
) -> Response:
    app = thread_app(request)
    statuses: list[Status] | None = None
    if status:
        statuses = []
        for part in status.split(","):
            try:
                statuses.append(Status(part.strip()))
            except ValueError:
                raise UsageError(
                    f"unknown status {part.strip()!r}", hint=", ".join(s.value for s in Status)
                ) from None
    repo_id = app.find_repo(repo, register=False).id if repo else None
    sessions = app.store.sessions(statuses=statuses, repo_id=repo_id)
    if statuses is None and not all:
        sessions = [s for s in sessions if s.status.live]
    checks = check_summaries(app.store)
    out = []
    for s in sessions:
        d = session_json(s)
        d["check"] = checks.get(s.id)
        out.append(d)
    # Plain JSON already: FastAPI's generic encoder walked every field of every session,
    # most of this route's time at 1,000 sessions (issue 14 §6). Same bytes as JSONResponse.
    body = json.dumps(
        {"sessions": out}, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    return Response(body.encode(), media_type="application/json")


@router.post("/sessions", status_code=201)
def new_sessions(request: Request, body: NewSessions, response: Response) -> dict[str, Any]:
    from parallel_agents.cmdline import split_cmd

    app = thread_app(request)
    if not body.repo:
        raise UsageError(
            "say which repo: 'repo' is a registered repo name or a path",
            hint="see GET /api/v1/repos",
        )
    cmd: list[str] | None
    if isinstance(body.cmd, str):
        cmd = split_cmd(body.cmd)
    elif body.cmd is not None:
        if not body.cmd or not body.cmd[0]:
            raise UsageError("'cmd' is empty")
        cmd = list(body.cmd)
    else:
        cmd = None
    created: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    if (body.from_branch, body.from_pr, body.from_issue) != (None, None, None):
        from parallel_agents.sessions.from_work import new_from

        if body.count != 1:
            raise UsageError("a session started from existing work cannot have count > 1")
        s = new_from(app, body.prompt, from_branch=body.from_branch, from_pr=body.from_pr,
                     from_issue=body.from_issue, repo=body.repo, agent=body.agent, cmd=cmd,
                     model=body.model, base=body.base, title=body.title, timeout=body.timeout,
                     interactive=body.interactive, env=body.env,
                     parent=body.parent, runtime=body.runtime)  # fmt: skip
        return {"sessions": [session_json(s)]}
    for _ in range(body.count):
        try:
            s = app.new_session(
                body.prompt,
                repo=body.repo,
                agent=body.agent,
                cmd=cmd,
                model=body.model,
                base=body.base,
                title=body.title,
                timeout=body.timeout,
                interactive=body.interactive,
                env=body.env,
                parent=body.parent,
                runtime=body.runtime,
            )
        except PAError as e:
            if not created:
                raise
            errors.append({"error": e.message, "hint": e.hint})
            break
        created.append(session_json(s))
    # Where the last start's time went (issue 14: the spawn bench's per-phase table).
    response.headers["Server-Timing"] = ", ".join(
        f"{k};dur={v * 1000:.2f}" for k, v in app.timings.items()
    )
    out: dict[str, Any] = {"sessions": created}
    if errors:
        out["errors"] = errors
    return out


@router.get("/sessions/{sid}")
def get_session(request: Request, sid: str) -> dict[str, Any]:
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    run = workspace_run.status(app.store, s)
    return session_with_turns(s, app.store.turns(s.id), run, lineage.children(app.store, s.id))


@router.post("/sessions/{sid}/send")
def send(request: Request, sid: str, body: Prompt) -> dict[str, Any]:
    return session_json(thread_app(request).send(sid, body.prompt))


@router.post("/sessions/{sid}/stop")
def stop(request: Request, sid: str) -> dict[str, Any]:
    return session_json(thread_app(request).stop(sid))


@router.post("/sessions/{sid}/discard")
def discard(request: Request, sid: str) -> dict[str, Any]:
    s, archive = thread_app(request).discard(sid)
    d = session_json(s)
    d["archive"] = archive
    return d


class RestoreBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    archive: str | None = Field(
        None, description="Archive ref to restore from (e.g. refs/pa/archive/orphan-…)."
    )


@router.post("/sessions/{sid}/restore")
def restore(request: Request, sid: str, body: RestoreBody | None = None) -> dict[str, Any]:
    s = thread_app(request).restore(sid, body.archive if body else None)
    d = session_json(s)
    d["notes"] = list(s.options.get("restore_notes") or [])
    return d


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(description="The new title (the branch keeps its name).")


@router.post("/sessions/{sid}/rename")
def rename(request: Request, sid: str, body: Rename) -> dict[str, Any]:
    return session_json(thread_app(request).rename(sid, body.title))


@router.post("/sessions/{sid}/read")
def mark_read(request: Request, sid: str) -> dict[str, Any]:
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    app.mark_read(s.id)
    return session_json(app.store.session(s.id))
