"""What a handler reaches through its request: the server's shared state and this
thread's orchestrator (``create_app`` puts the ``ServerState`` on ``app.state.pa``)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from parallel_agents.server.loop import ServerState
from parallel_agents.sessions.orchestrator import App


def server_state(conn: HTTPConnection) -> ServerState:
    state: ServerState = conn.app.state.pa
    return state


def thread_app(conn: HTTPConnection) -> App:
    """This worker thread's orchestrator. Call inside the handler, never in a dependency
    (FastAPI may run dependencies on another thread than the handler)."""
    return server_state(conn).app()
