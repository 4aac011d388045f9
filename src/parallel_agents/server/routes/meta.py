"""What the server is and knows: its health, the session statuses, the agents it runs."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from parallel_agents.models import Status
from parallel_agents.server.routes._request import server_state

router = APIRouter(prefix="/api/v1")


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    st = server_state(request)
    return {
        "version": st.version,
        "pid": st.pid,
        "uptime": round(time.time() - st.started_at, 3),
        "started_at": st.started_at,
        "url": st.url,
        "supervisor": st.loop_health(),
    }


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

    default = str(server_state(request).settings.default_agent)
    names = available()
    ordered = ([default] if default in names else []) + [n for n in names if n != default]
    return {
        "agents": [{"name": n, "default": n == default} for n in ordered],
        "default": default,
    }
