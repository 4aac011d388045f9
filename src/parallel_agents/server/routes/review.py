"""Review and merge over the API: diffs, checks, rollback, conflicts, merge queue, PRs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import merge as merge_service
from parallel_agents.sessions import review as review_service
from parallel_agents.sessions.views import session_json

router = APIRouter(prefix="/api/v1")
_RUN = {"X-PA-Run": "git"}  # the diff answer is a git command to run, not its text


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MergeBody(_Body):
    strategy: Literal["merge", "squash", "rebase"] | None = None
    into: str | None = Field(default=None, max_length=255)
    message: str | None = Field(default=None, max_length=100_000)
    fix_conflicts: bool = False
    force: bool = False


class QueueBody(MergeBody):
    ids: list[str] = Field(min_length=1, max_length=500)


class CheckBody(_Body):
    command: str | None = Field(default=None, max_length=10_000)
    timeout: float | None = Field(default=None, gt=0, le=86_400)


class RollbackBody(_Body):
    turn: int = Field(ge=1, le=1_000_000)


class PRBody(_Body):
    draft: bool = False


@router.get("/sessions/{sid}/diff")
def diff(
    request: Request,
    sid: str,
    turn: int | None = Query(default=None, ge=1, le=1_000_000),
    format: Literal["json", "patch", "stat", "name-only"] = "json",
    run: Literal["git"] | None = None,
) -> Any:
    """What the session (or one turn) changed: files as JSON, or the patch (its stat, its
    paths one a line) as text streamed from git. With ``run=git`` (the light `pa diff`
    client, on this machine) the answer may instead be the git command that prints the
    same text, for the client to run itself: its worktree and argv, NUL-separated, with
    the ``X-PA-Run: git`` header."""
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    if format in ("patch", "stat"):  # `pa diff` (either path): a routine run was looked at
        from parallel_agents.sessions import inbox

        inbox.seen(app, [s.id])
    if run == "git" and turn is None and format in ("patch", "stat"):
        plan = review_service.diff_argv(app.store, s, stat=format == "stat")
        if plan is not None:
            body = "\0".join([str(plan[0]), *plan[1]])
            return Response(body, media_type="application/octet-stream", headers=_RUN)
    if format == "json":
        from parallel_agents.git import diffs

        base, target, note = review_service.diff_range(app.store, s, turn)
        files = diffs.diff_files(Path(app.store.repo(s.repo_id).path), base, target)
        return {
            "session": s.id,
            "base": base,
            "target": target,
            "turn": turn,
            "note": note,
            "files": [f.to_json() for f in files],
        }
    chunks, note = review_service.diff_text(
        app.store, s, turn, stat=format == "stat", name_only=format == "name-only"
    )
    # The text diff's note (a discarded session, nested repositories) rides in a header,
    # percent-encoded because a header is one latin-1 line; `pa diff` prints it on stderr.
    headers = {"X-PA-Note": quote(note)} if note else None
    return StreamingResponse(chunks, media_type="text/plain; charset=utf-8", headers=headers)


@router.post("/sessions/{sid}/check")
def check(request: Request, sid: str, body: CheckBody | None = None) -> dict[str, Any]:
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    b = body or CheckBody()
    return review_service.run_check(app.store, app.settings, s, b.command, b.timeout)


@router.post("/sessions/{sid}/rollback")
def rollback(request: Request, sid: str, body: RollbackBody) -> dict[str, Any]:
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    res = review_service.rollback(app.store, s, body.turn)
    res["session"] = session_json(app.store.session(s.id))
    return res


@router.get("/conflicts")
def conflicts(request: Request, repo: str | None = None) -> dict[str, Any]:
    app = thread_app(request)
    rid = app.find_repo(repo, register=False).id if repo else None
    return review_service.conflicts(app.store, rid)


@router.post("/sessions/{sid}/merge")
def merge_one(request: Request, sid: str, body: MergeBody | None = None) -> dict[str, Any]:
    b = body or MergeBody()
    return merge_service.merge_sessions(
        thread_app(request),
        [sid],
        strategy=b.strategy,
        into=b.into,
        message=b.message,
        fix_conflicts=b.fix_conflicts,
        force=b.force,
    )


@router.post("/merge")
def merge_queue(request: Request, body: QueueBody) -> dict[str, Any]:
    return merge_service.merge_sessions(
        thread_app(request),
        body.ids,
        strategy=body.strategy,
        into=body.into,
        message=body.message,
        fix_conflicts=body.fix_conflicts,
        force=body.force,
    )


@router.post("/sessions/{sid}/pr")
def pull_request(request: Request, sid: str, body: PRBody | None = None) -> dict[str, Any]:
    return merge_service.pr(thread_app(request), sid, draft=(body or PRBody()).draft)


@router.get("/sessions/{sid}/check")
def last_check(request: Request, sid: str) -> dict[str, Any]:
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    return {"session": s.id, "check": review_service.last_check(app.store, s.id)}
