"""A routine's HTTP trigger (issue 17): fire it with its own token, rotate the token, list
the calls. ``/fire`` is the one route the server token does not open: ``auth`` lets exactly
``POST /api/v1/routines/NAME/fire`` through (Host and Origin still checked) and
``sessions/routine_api.fire`` checks the routine's token itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import routine_api

router = APIRouter(prefix="/api/v1")


async def _capped_body(request: Request) -> bytes:
    """The body, read no further than one byte past the cap (``fire`` refuses it then)."""
    out = bytearray()
    async for chunk in request.stream():
        out += chunk
        if len(out) > routine_api.MAX_BODY:
            break
    return bytes(out)


@router.post("/routines/{name}/fire", status_code=202)
async def fire_routine(request: Request, name: str) -> JSONResponse:
    """Start a run of ``name`` with its token (``Authorization: Bearer``); body
    ``{"text": "..."}`` optional. 202 ``{routine, run, session}``; 401, 400, 409, 429."""
    raw = await _capped_body(request)
    remote = request.client.host if request.client else ""
    auth = request.headers.get("authorization")

    def answer() -> routine_api.Answer:
        return routine_api.fire(thread_app(request), name, auth, raw, remote)

    a = await run_in_threadpool(answer)
    return JSONResponse(a.body, status_code=a.status, headers=a.headers or None)


@router.post("/routines/{name}/token")
def rotate_routine_token(request: Request, name: str) -> dict[str, Any]:
    """A new token for ``name``'s HTTP trigger, shown this once; the old one is revoked."""
    return routine_api.rotate(thread_app(request), name)


@router.get("/routines/{name}/calls")
def routine_calls(request: Request, name: str, limit: int = 100) -> dict[str, Any]:
    return {"calls": routine_api.calls(thread_app(request), name, limit)}
