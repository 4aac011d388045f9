"""``/mcp``: pa's MCP tools over streamable HTTP (issue 18), behind the API's own rules.

The auth middleware guards ``/mcp`` as it guards ``/api/v1`` (token or cookie, Host,
Origin). The tools (``mcp_server/``) get a backend that calls this very app in process,
with the server's token: the same routes, rules and errors as a client would get, and
no socket. The MCP SDK is imported at the first ``/mcp`` request, not at start: a server
nobody asks over MCP loads none of it. Stateless, JSON answers: each request stands
alone, so nothing is kept per MCP client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from parallel_agents.errors import Conflict, NotFound, PAError, UsageError
from parallel_agents.server.asgi_scope import http_scope

if TYPE_CHECKING:
    from fastapi import FastAPI

    from parallel_agents.server.loop import ServerState

PATH = "/mcp"
Message = MutableMapping[str, Any]


class AppBackend:
    """``mcp_server.backend.Backend`` over the app itself. Called on worker threads (the
    tools run it there); each request runs on the server's event loop."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state

    def _headers(self, body: bytes) -> list[tuple[bytes, bytes]]:
        return [
            (b"host", f"127.0.0.1:{self.state.guard.port}".encode()),
            (b"authorization", f"Bearer {self.state.token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]

    def _request(
        self, method: str, path: str, params: dict[str, Any] | None, body: bytes, cap: int
    ) -> tuple[int, dict[str, str], bytes, bool]:
        import anyio.from_thread

        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        full = "/api/v1" + path
        scope = http_scope(method, full, query, self._headers(body), self.state.guard.port or 0)
        return anyio.from_thread.run(_call, self.app, scope, body, cap)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        import json

        data = b"" if body is None else json.dumps(body).encode("utf-8")
        status, _, content, _ = self._request(method, path, params, data, 1 << 62)
        answer = json.loads(content or b"null")
        if status >= 400:
            raise _error(status, answer)
        return answer

    def text(self, path: str, params: dict[str, Any], cap: int) -> tuple[str, bool, str | None]:
        import json

        status, headers, content, cut = self._request("GET", path, params, b"", cap)
        if status >= 400:
            raise _error(status, json.loads(content or b"null"))
        note = headers.get("x-pa-note")
        return content.decode("utf-8", "ignore"), cut, unquote(note) if note else None

    def refresh(self) -> None:
        """The server's loop moves statuses on."""


def _error(status: int, answer: Any) -> PAError:
    """The error JSON of a route as the PAError a client would raise for it."""
    body = answer if isinstance(answer, dict) else {}
    msg, hint = str(body.get("error") or f"the pa server answered {status}"), body.get("hint")
    kind = {404: NotFound, 409: Conflict, 400: UsageError, 422: UsageError}.get(status, PAError)
    return kind(msg, hint=hint)


async def _call(
    app: Any, scope: dict[str, Any], body: bytes, cap: int
) -> tuple[int, dict[str, str], bytes, bool]:
    """One request through the ASGI app; at most ``cap`` bytes of its body are kept."""
    sent = False
    status = 500
    headers: dict[str, str] = {}
    chunks: list[bytes] = []
    size = 0
    cut = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the request never ends early from this side
        return {"type": "http.disconnect"}

    async def send(msg: Message) -> None:
        nonlocal status, headers, size, cut
        if msg["type"] == "http.response.start":
            status = int(msg["status"])
            headers = {
                bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
                for k, v in msg.get("headers", [])
            }
        elif msg["type"] == "http.response.body":
            data = bytes(msg.get("body", b""))
            room = cap - size
            if len(data) > room:
                data, cut = data[: max(room, 0)], True
            chunks.append(data)
            size += len(data)

    await app(scope, receive, send)
    return status, headers, b"".join(chunks), cut


class Endpoint:
    """The ASGI endpoint at ``/mcp``: the SDK's session manager, made at the first
    request and run by a task of the server's lifespan."""

    def __init__(self, app: FastAPI, state: ServerState) -> None:
        self.app = app
        self.state = state
        self._manager: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self.live = False  # only a running server (its lifespan) serves MCP

    async def _start(self) -> None:
        from mcp.server.transport_security import TransportSecuritySettings

        from parallel_agents.mcp_server.tools import Tools
        from parallel_agents.mcp_server.verbs import build

        tools = Tools(AppBackend(self.app, self.state), self.state.settings)
        mcp = build(tools)
        # Host and Origin are the auth middleware's, for whatever address pa is bound to.
        mcp.settings.transport_security = TransportSecuritySettings(
            enable_dns_rebinding_protection=False
        )
        mcp.settings.stateless_http = True
        mcp.settings.json_response = True
        mcp.streamable_http_app()  # makes the session manager with these settings
        manager = mcp.session_manager
        ready, self._stop = asyncio.Event(), asyncio.Event()
        stop = self._stop

        async def serve() -> None:
            async with manager.run():
                ready.set()
                await stop.wait()

        self._task = asyncio.get_running_loop().create_task(serve())
        await ready.wait()
        self._manager = manager

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.live:
            from starlette.responses import JSONResponse

            answer = {"error": "MCP over HTTP needs the running server", "hint": "pa server start"}
            await JSONResponse(answer, status_code=503)(scope, receive, send)
            return
        async with self._lock:
            if self._manager is None:
                await self._start()
        await self._manager.handle_request(scope, receive, send)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For the server's lifespan: serve MCP while it runs, end its task after."""
        self.live = True
        try:
            yield
        finally:
            self.live = False
            if self._stop is not None and self._task is not None:
                self._stop.set()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self._task, timeout=5)


def mount(app: FastAPI, state: ServerState) -> Endpoint:
    """Serve ``/mcp`` on ``app``; the caller runs ``Endpoint.running`` in its lifespan."""
    from starlette.routing import Route

    endpoint = Endpoint(app, state)
    # An ASGI endpoint (not a request handler): the SDK answers the request itself.
    route = Route(PATH, endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    app.router.routes.append(route)
    return endpoint
