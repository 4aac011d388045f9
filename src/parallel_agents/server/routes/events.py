"""The events: pages of them (JSON) and live streams of them (server-sent events)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from parallel_agents.models import Event
from parallel_agents.server.routes._request import server_state, thread_app
from parallel_agents.server.sse import event_stream, parse_last_event_id

router = APIRouter(prefix="/api/v1")

MAX_EVENTS = 10_000
PAGE_BYTES = 8 * 1024 * 1024
FETCH = 500


def _kinds(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [k.strip() for k in value.split(",") if k.strip()] or None


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
    app = thread_app(request)
    s = app.store.resolve_session(sid)
    k = _kinds(kinds)

    def fetch(cursor: int, n: int) -> list[Event]:
        return app.store.events(s.id, after_seq=cursor, kinds=k, limit=n)

    parts, last, more = _page(fetch, after_seq, "seq", limit)
    return _json_page({"session_id": s.id}, parts, {"last_seq": last, "more": more})


@router.get("/events", description=_PAGE_DOC)
def all_events(
    request: Request,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 1000,
    kinds: Annotated[str | None, Query(description="Comma-separated kinds.")] = None,
) -> Response:
    store = thread_app(request).store
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
    st = server_state(request)
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
    start = after_id if after_id is not None else server_state(request).app_latest_id()
    return _stream(request, None, start, last_event_id, kinds)


@router.get("/sessions/{sid}/stream", description=_STREAM_DOC)
def stream_session(
    request: Request,
    sid: str,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Default: from the start.")] = 0,
    last_event_id: str | None = None,
    kinds: str | None = None,
) -> StreamingResponse:
    s = thread_app(request).store.resolve_session(sid)
    return _stream(request, s.id, after_id, last_event_id, kinds)
