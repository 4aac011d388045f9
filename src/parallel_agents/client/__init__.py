"""The client of the pa server, used by the CLI (and anyone scripting pa).

    from parallel_agents.client import Client, ensure_server

    c = ensure_server()                      # starts a background server if needed
    [s] = c.new_sessions("fix the bug", repo="myrepo", cmd=["./agent.sh"])
    for ev in c.stream(session_id=s["id"]):  # follows, reconnecting with Last-Event-ID
        print(ev["kind"], ev["payload"])

One ``Client`` writes every verb once, as a request to the server's routes, over a
transport: HTTP to a running server (``_http``), or the server's app called in this
process (``_local``, ``Client.in_process()``) when no server may start. ``connect()``
picks one, as every CLI command does. Sessions and events come back as the API's JSON
dicts either way; ``session_from_json`` and ``event_from_json`` turn them into the model
dataclasses. Errors come back as the ``PAError`` subclasses the orchestrator raises
(NotFound, Conflict, UsageError), from the routes' error JSON.
"""

from __future__ import annotations

from parallel_agents.client._client import Client
from parallel_agents.client._connect import (
    autostart_enabled,
    connect,
    ensure_server,
    healthy,
    start_background,
)
from parallel_agents.client._models import event_from_json, session_from_json
from parallel_agents.client._seg import seg
from parallel_agents.client._sse import parse_sse
from parallel_agents.server.daemon import ServerNotRunning

__all__ = [
    "Client",
    "ServerNotRunning",
    "autostart_enabled",
    "connect",
    "ensure_server",
    "event_from_json",
    "healthy",
    "parse_sse",
    "seg",
    "session_from_json",
    "start_background",
]
