"""The server's ASGI app: ``create_app`` wires the shared state, the error handlers,
every router and the auth middleware together.

The routes live in ``server.routes`` (one module per resource) and the supervisor loop
in ``server.loop``; nothing imports this module but the daemon and the in-process client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from parallel_agents import __version__
from parallel_agents.config import Settings, load_settings
from parallel_agents.server.auth import AuthMiddleware
from parallel_agents.server.errors import install_error_handlers
from parallel_agents.server.loop import ServerState
from parallel_agents.server.mcp_http import mount as mount_mcp  # issue 18
from parallel_agents.server.routes import (
    events,
    groups,
    inbox,  # issue 17
    maps,  # issue 15 §4
    meta,
    pairing,  # issue 16 §5
    plans,
    repos,
    review,
    reviewer,
    routine_api,  # issue 17: the HTTP trigger
    routines,  # issue 17
    run,  # issue 16 §1
    runtime,  # issue 19: pa runtime nodes
    sessions,
    terminal,
    web,
    workspace,  # issue 16 §2-3
)


def create_app(home: Path | None = None, *, settings: Settings | None = None) -> FastAPI:
    """The server's ASGI app for the PA_HOME ``home`` (default: from the environment).

    The supervisor loop starts with the app's lifespan. ``app.state.pa`` is the
    ``ServerState``; ``app.state.guard`` the auth guard (``auth.check_ws`` uses it).
    The daemon calls ``app.state.pa.bind(host, port)`` once the socket is bound: the Host
    check needs the port.
    """
    settings = settings or load_settings()
    if home is not None:
        settings.home = Path(home)
    state = ServerState(settings.home, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.notifier.attach(asyncio.get_running_loop())
        state.start_loop()
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            state.stop_loop()

    app = FastAPI(
        title="Parallel Agents",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    app.state.pa = state
    app.state.guard = state.guard
    install_error_handlers(app)
    for module in (meta, repos, sessions, events, review, reviewer, groups, plans, terminal, web):
        app.include_router(module.router)
    app.include_router(maps.router)
    app.include_router(workspace.router)
    app.include_router(pairing.router)
    app.include_router(run.router)
    app.include_router(routines.router)
    app.include_router(inbox.router)
    app.include_router(routine_api.router)
    app.include_router(runtime.router)
    mcp_endpoint = mount_mcp(app, state)  # issue 18: /mcp, the MCP tools over HTTP
    app.add_middleware(AuthMiddleware, guard=state.guard)
    return app
