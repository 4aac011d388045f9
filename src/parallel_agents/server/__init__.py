"""The orchestrator server: FastAPI app, REST + SSE API, auth, and the daemon around it.

Importing this package is cheap; FastAPI and uvicorn load only when an app is built
(``parallel_agents.server.app.create_app``) or served (``parallel_agents.server.daemon``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parallel_agents.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from parallel_agents.server.app import create_app

        return create_app
    raise AttributeError(name)
