"""The REST API (``/api/v1``) and its SSE streams. JSON in, JSON out.

Errors are ``{"error": message, "hint": hint-or-null}`` with 400 (bad input), 404 (no
such repo/session), 409 (not possible in the session's current state), 401 (token),
422 (request body does not validate; ``detail`` lists the fields). Unexpected failures
are 500 with the same shape.

Handlers are plain ``def``: FastAPI runs them on worker threads, and each thread uses
its own store (``ServerState.app()``) because a SQLite connection is single-threaded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.models import Event, Session, Status
from parallel_agents.server.auth import COOKIE
from parallel_agents.server.sse import event_stream, parse_last_event_id

if TYPE_CHECKING:
    from fastapi import FastAPI

    from parallel_agents.server.app import ServerState
    from parallel_agents.sessions.orchestrator import App

log = logging.getLogger("parallel_agents.server")

router = APIRouter(prefix="/api/v1")
login_router = APIRouter()

MAX_EVENTS = 10_000
PAGE_BYTES = 8 * 1024 * 1024
FETCH = 500


# -- plumbing --------------------------------------------------------------------------
def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.pa
    return state


def _app(request: Request) -> App:
    """This worker thread's orchestrator. Call inside the handler, never in a dependency
    (FastAPI may run dependencies on another thread than the handler)."""
    return _state(request).app()


def session_json(s: Session) -> dict[str, Any]:
    d = s.to_json()
    d["worktree_exists"] = Path(s.worktree).is_dir()
    return d


def status_code_for(e: PAError) -> int:
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, Conflict):
        return 409
    return 400  # UsageError and every other expected failure


def _kinds(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [k.strip() for k in value.split(",") if k.strip()] or None


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _plain(err: Mapping[str, Any]) -> str:
    """One validation error as a sentence a person can act on (`turn must be 1 or more`),
    never pydantic's wording, which names its internals (query.turn, Input should…)."""
    loc = [x for x in err.get("loc", ()) if x not in ("body", "query", "path", "header")]
    name = ".".join(str(x) for x in loc) or "the request"
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "greater_than_equal":
        return f"{name} must be {_num(ctx.get('ge'))} or more"
    if kind == "greater_than":
        return f"{name} must be more than {_num(ctx.get('gt'))}"
    if kind == "less_than_equal":
        return f"{name} must be {_num(ctx.get('le'))} or less"
    if kind == "less_than":
        return f"{name} must be less than {_num(ctx.get('lt'))}"
    if kind == "missing":
        return f"{name} is required"
    if kind.startswith("int_"):
        return f"{name} must be a whole number"
    if kind.startswith("float_") or kind in ("decimal_parsing", "decimal_type"):
        return f"{name} must be a number"
    if kind.startswith("bool_"):
        return f"{name} must be true or false"
    if kind in ("string_too_long", "too_long"):
        return f"{name} is too long (at most {ctx.get('max_length')})"
    if kind in ("string_too_short", "too_short"):
        n = ctx.get("min_length")
        return f"{name} must not be empty" if n == 1 else f"{name} is too short (at least {n})"
    if kind in ("literal_error", "enum"):
        return f"{name} must be one of {ctx.get('expected')}"
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if kind == "extra_forbidden":
        return f"{name} is not a known field"
    if kind.endswith("_type"):
        return f"{name} has the wrong type"
    return f"{name} is not valid"


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """What a request that does not validate gets as its ``error``: plain sentences."""
    parts = list(dict.fromkeys(_plain(e) for e in errors[:5]))
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PAError)
    async def pa_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PAError)
        return JSONResponse(
            {"error": exc.message, "hint": exc.hint}, status_code=status_code_for(exc)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        detail = [{k: v for k, v in err.items() if k in ("loc", "msg", "type")} for err in errors]
        return JSONResponse(
            {"error": validation_message(errors), "hint": None, "detail": detail},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {"error": str(exc.detail), "hint": None},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def crash(_request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error", exc_info=exc)
        return JSONResponse(
            {"error": f"internal error: {type(exc).__name__}: {exc}", "hint": "see server.log"},
            status_code=500,
        )

    app.include_router(login_router)


# -- login -----------------------------------------------------------------------------
@login_router.get("/login", include_in_schema=False)
def login(request: Request, token: str = "", next: str = "/") -> Any:
    """Trade the token for the ``pa_session`` cookie, then go to the dashboard."""
    guard = _state(request).guard
    if not guard.token_ok(token):
        return JSONResponse(
            {"error": "wrong or missing token", "hint": "use the URL `pa server status` prints"},
            status_code=401,
        )
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        COOKIE,
        guard.cookie_value,
        httponly=True,
        samesite="strict",
        path="/",
        max_age=30 * 24 * 3600,
    )
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp


# -- health ----------------------------------------------------------------------------
@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    st = _state(request)
    return {
        "version": st.version,
        "pid": st.pid,
        "uptime": round(time.time() - st.started_at, 3),
        "started_at": st.started_at,
        "url": st.url,
        "supervisor": st.loop_health(),
    }


# -- repos -----------------------------------------------------------------------------
class NewRepo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="Path of the git repository (on the server's machine).")
    name: str | None = None
    base: str | None = Field(None, description="Default base branch for new sessions.")


@router.get("/repos")
def list_repos(request: Request) -> dict[str, Any]:
    return {"repos": [r.__dict__ for r in _app(request).store.repos()]}


@router.post("/repos", status_code=201)
def add_repo(request: Request, body: NewRepo) -> dict[str, Any]:
    r = _app(request).add_repo(body.path, name=body.name, base=body.base)
    return dict(r.__dict__)


@router.delete("/repos/{name}")
def remove_repo(request: Request, name: str) -> dict[str, Any]:
    r = _app(request).remove_repo(name)
    return {"removed": r.__dict__}


class MovedRepo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="Where the repository is now (on the server's machine).")


@router.post("/repos/{name}/move")
def move_repo(request: Request, name: str, body: MovedRepo) -> dict[str, Any]:
    """Re-point a registered repo at the folder it was moved to; repair worktree links."""
    return _app(request).move_repo(name, body.path)


# -- sessions --------------------------------------------------------------------------
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


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str


@router.get("/sessions")
def list_sessions(
    request: Request,
    all: Annotated[bool, Query(description="Include merged and discarded.")] = False,
    status: Annotated[str | None, Query(description="Comma-separated statuses.")] = None,
    repo: Annotated[str | None, Query(description="Repo name or path.")] = None,
) -> dict[str, Any]:
    app = _app(request)
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
    from parallel_agents.sessions.review import check_summaries

    checks = check_summaries(app.store)
    out = []
    for s in sessions:
        d = session_json(s)
        d["check"] = checks.get(s.id)
        out.append(d)
    return {"sessions": out}


@router.post("/sessions", status_code=201)
def new_sessions(request: Request, body: NewSessions) -> dict[str, Any]:
    from parallel_agents.cmdline import split_cmd

    app = _app(request)
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
            )
        except PAError as e:
            if not created:
                raise
            errors.append({"error": e.message, "hint": e.hint})
            break
        created.append(session_json(s))
    out: dict[str, Any] = {"sessions": created}
    if errors:
        out["errors"] = errors
    return out


@router.get("/sessions/{sid}")
def get_session(request: Request, sid: str) -> dict[str, Any]:
    app = _app(request)
    s = app.store.resolve_session(sid)
    d = session_json(s)
    d["turns"] = [t.to_json() for t in app.store.turns(s.id)]
    return d


def _page(
    fetch: Callable[[int, int], list[Event]], start: int, key: str, limit: int
) -> tuple[list[str], int, bool]:
    """Events after ``start`` as JSON texts: at most ``limit`` of them and about
    PAGE_BYTES in all (a page of huge events stays bounded). Returns (texts, the
    cursor of the last one, whether there may be more)."""
    parts: list[str] = []
    size = 0
    cursor = start
    while len(parts) < limit:
        want = min(FETCH, limit - len(parts))
        batch = fetch(cursor, want)
        for e in batch:
            text = json.dumps(e.to_json(), ensure_ascii=False)
            if parts and size + len(text) > PAGE_BYTES:
                return parts, cursor, True
            parts.append(text)
            size += len(text)
            cursor = int(getattr(e, key))
        if len(batch) < want:
            return parts, cursor, False
    return parts, cursor, True


def _json_page(head: dict[str, Any], parts: list[str], tail: dict[str, Any]) -> Response:
    fields = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    fields.append('"events": [' + ",".join(parts) + "]")
    fields += [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in tail.items()]
    return Response(("{" + ", ".join(fields) + "}").encode(), media_type="application/json")


_PAGE_DOC = (
    "At most `limit` events and about 8 MB per page; `more` says whether to ask again "
    "(from `last_seq`/`last_id`)."
)


@router.get("/sessions/{sid}/events", description=_PAGE_DOC)
def session_events(
    request: Request,
    sid: str,
    after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 1000,
    kinds: Annotated[str | None, Query(description="Comma-separated kinds.")] = None,
) -> Response:
    app = _app(request)
    s = app.store.resolve_session(sid)
    k = _kinds(kinds)

    def fetch(cursor: int, n: int) -> list[Event]:
        return app.store.events(s.id, after_seq=cursor, kinds=k, limit=n)

    parts, last, more = _page(fetch, after_seq, "seq", limit)
    return _json_page({"session_id": s.id}, parts, {"last_seq": last, "more": more})


@router.post("/sessions/{sid}/send")
def send(request: Request, sid: str, body: Prompt) -> dict[str, Any]:
    return session_json(_app(request).send(sid, body.prompt))


@router.post("/sessions/{sid}/stop")
def stop(request: Request, sid: str) -> dict[str, Any]:
    return session_json(_app(request).stop(sid))


@router.post("/sessions/{sid}/discard")
def discard(request: Request, sid: str) -> dict[str, Any]:
    s, archive = _app(request).discard(sid)
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
    s = _app(request).restore(sid, body.archive if body else None)
    d = session_json(s)
    d["notes"] = list(s.options.get("restore_notes") or [])
    return d


@router.post("/sessions/{sid}/read")
def mark_read(request: Request, sid: str) -> dict[str, Any]:
    app = _app(request)
    s = app.store.resolve_session(sid)
    app.mark_read(s.id)
    return session_json(app.store.session(s.id))


# -- events ----------------------------------------------------------------------------
@router.get("/events", description=_PAGE_DOC)
def all_events(
    request: Request,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 1000,
    kinds: Annotated[str | None, Query(description="Comma-separated kinds.")] = None,
) -> Response:
    store = _app(request).store
    k = _kinds(kinds)

    def fetch(cursor: int, n: int) -> list[Event]:
        return store.events(after_id=cursor, kinds=k, limit=n)

    parts, last, more = _page(fetch, after_id, "id", limit)
    return _json_page({}, parts, {"last_id": last, "more": more})


def _stream(
    request: Request,
    sid: str | None,
    start: int,
    last_event_id: str | None,
    kinds: str | None,
) -> StreamingResponse:
    st = _state(request)
    resume = parse_last_event_id(request.headers.get("last-event-id"), last_event_id)
    reset_from: int | None = None
    if resume is not None:
        # Above the newest stored id (the database was reset): waiting for that id would
        # keep the stream silent for ever, so resume at the newest and say so.
        latest = st.app_latest_id()
        if resume > latest:
            reset_from, resume = resume, latest
    gen = event_stream(
        st.query_events,
        st.notifier,
        session_id=sid,
        after_id=start if resume is None else resume,
        kinds=_kinds(kinds),
        heartbeat=st.heartbeat,
        is_disconnected=request.is_disconnected,
        reset_from=reset_from,
    )
    return StreamingResponse(
        gen,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


_STREAM_DOC = (
    "Server-sent events. Resume with the `Last-Event-ID` header or `?last_event_id=`; "
    "`?after_id=` sets the start otherwise. `?token=` is accepted here. A resume id above "
    "the newest stored one (a reset database) resumes at the newest and first sends an "
    "`event: reset` message (data: `last_id`, `requested`). Events of kind `error` are "
    "named `agent_error` on the wire (EventSource reserves `error`)."
)


@router.get("/stream", description=_STREAM_DOC)
def stream_all(
    request: Request,
    after_id: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="Default: from now.")
    ] = None,
    last_event_id: str | None = None,
    kinds: str | None = None,
) -> StreamingResponse:
    start = after_id if after_id is not None else _state(request).app_latest_id()
    return _stream(request, None, start, last_event_id, kinds)


@router.get("/sessions/{sid}/stream", description=_STREAM_DOC)
def stream_session(
    request: Request,
    sid: str,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Default: from the start.")] = 0,
    last_event_id: str | None = None,
    kinds: str | None = None,
) -> StreamingResponse:
    s = _app(request).store.resolve_session(sid)
    return _stream(request, s.id, after_id, last_event_id, kinds)


# -- vocabulary ------------------------------------------------------------------------
@router.get("/statuses")
def statuses() -> dict[str, Any]:
    """The session statuses and what they mean, from ``models.Status``: ``live`` is the one
    definition of a live session (`pa ls`, GET /sessions without `all`, the dashboard's
    "live" filter); ``active`` means an agent is (about to be) working."""
    return {"statuses": [{"name": s.value, "live": s.live, "active": s.active} for s in Status]}


@router.get("/agents")
def agents(request: Request) -> dict[str, Any]:
    """The agents this server can run (built-in and plug-ins), the default one first."""
    from parallel_agents.agents.registry import available

    default = str(_state(request).settings.default_agent)
    names = available()
    ordered = ([default] if default in names else []) + [n for n in names if n != default]
    return {
        "agents": [{"name": n, "default": n == default} for n in ordered],
        "default": default,
    }
