"""`auth.check_ws`, the gate for the terminal/dashboard websockets, and the middleware's
websocket rules, driven through the real app with raw ASGI messages (no server needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket

from parallel_agents.server.app import create_app
from parallel_agents.server.auth import check_ws


def _connect(app: FastAPI, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Open a websocket on ``app``; the ASGI messages the app sent back."""
    raw_path, _, query = path.partition("?")
    hdrs = {"host": "127.0.0.1:7317", **headers}
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 7317),
        "subprotocols": [],
    }
    inbox: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(msg: Any) -> None:
        sent.append(dict(msg))

    asyncio.run(app(scope, receive, send))
    return sent


def test_check_ws_requires_host_origin_and_token(pa_home: Path) -> None:
    app = create_app(pa_home)
    app.state.pa.bind("127.0.0.1", 7317)

    async def echo(websocket: WebSocket) -> None:
        if not await check_ws(websocket):
            return
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app.add_api_websocket_route("/ws/echo", echo)  # outside /api/v1: check_ws alone guards it
    app.add_api_websocket_route("/api/v1/ws/echo", echo)
    token = app.state.pa.token
    cookie = f"pa_session={app.state.guard.cookie_value}"
    origin = {"origin": "http://127.0.0.1:7317"}

    def accepted(sent: list[dict[str, Any]]) -> bool:
        return [m["type"] for m in sent][:2] == ["websocket.accept", "websocket.send"]

    def refused(sent: list[dict[str, Any]]) -> bool:
        return len(sent) == 1 and sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008

    for base in ("/ws/echo", "/api/v1/ws/echo"):
        assert accepted(_connect(app, f"{base}?token={token}", origin))
        assert accepted(_connect(app, base, {"authorization": f"Bearer {token}"}))  # no Origin
        assert accepted(_connect(app, base, {**origin, "cookie": cookie}))
        assert accepted(_connect(app, base, {"origin": "http://localhost:7317", "cookie": cookie}))

        assert refused(_connect(app, base, origin))  # no token
        assert refused(_connect(app, f"{base}?token=wrong", origin))
        assert refused(_connect(app, base, {**origin, "cookie": "pa_session=forged"}))
        assert refused(_connect(app, f"{base}?token={token}", {"origin": "http://evil.example"}))
        assert refused(_connect(app, f"{base}?token={token}", {"origin": "null"}))
        assert refused(_connect(app, f"{base}?token={token}", {**origin, "host": "evil.example"}))
        assert refused(_connect(app, f"{base}?token={token}", {**origin, "host": "localhost:7318"}))
