"""Where sessions run (issue 19): the Ray cluster's nodes, slots, CLIs and sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from parallel_agents.server.routes._request import thread_app
from parallel_agents.sessions import runtime_nodes

router = APIRouter(prefix="/api/v1")


@router.get("/runtime/nodes")
def list_nodes(request: Request, refresh: bool = False) -> dict[str, Any]:
    """The Ray cluster's nodes (``refresh``: probe their CLIs now, not from the cache)."""
    return {"nodes": runtime_nodes.nodes(thread_app(request), refresh=refresh)}
