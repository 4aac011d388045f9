"""The terminal websocket, through the real app (auth middleware included) and real tmux.

The app is driven as ASGI directly (no server, no websocket library): each viewer is a
task running the app with a queue for what the browser sends and one for what it gets.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.runtime import tmux
from parallel_agents.server.app import create_app
from parallel_agents.sessions.orchestrator import App

from .conftest import BANNER, fake_session, wait_screen

PORT = 7317
ORIGIN = {"origin": f"http://127.0.0.1:{PORT}"}
STEP = 15.0  # seconds any single expected frame may take


class Viewer:
    """One browser tab's websocket, as ASGI messages."""

    def __init__(self, app: Any, path: str, headers: dict[str, str]) -> None:
        raw_path, _, query = path.partition("?")
        hdrs = {"host": f"127.0.0.1:{PORT}", **headers}
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", PORT),
            "subprotocols": [],
        }
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.inbox.put_nowait({"type": "websocket.connect"})
        self.output = b""
        self.task = asyncio.create_task(app(scope, self.inbox.get, self._send))

    async def _send(self, msg: Any) -> None:
        await self.outbox.put(dict(msg))

    async def recv(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.outbox.get(), STEP)

    async def opened(self) -> bool:
        msg = await self.recv()
        return bool(msg["type"] == "websocket.accept")

    async def until(self, needle: str) -> None:
        async def go() -> None:
            while needle.encode() not in self.output:
                msg = await self.outbox.get()
                if msg["type"] == "websocket.close":
                    raise AssertionError(f"closed before {needle!r}: {msg}")
                self.output += msg.get("bytes") or (msg.get("text") or "").encode()

        try:
            await asyncio.wait_for(go(), STEP)
        except TimeoutError:
            raise AssertionError(f"{needle!r} never came; got {self.output[-1500:]!r}") from None

    def type(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    def raw(self, data: bytes) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "bytes": data})

    async def close(self) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, STEP)


async def eventually(pred: Any, what: str) -> None:
    async def go() -> None:
        while not await asyncio.to_thread(pred):
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(go(), STEP)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def web(pa_home: Path) -> tuple[Any, str]:
    web_app = create_app(pa_home)
    web_app.state.pa.bind("127.0.0.1", PORT)
    return web_app, web_app.state.pa.token


def test_type_see_output_resize_and_many_viewers(
    app: App, repo: Path, pa_home: Path, web: tuple[Any, str]
) -> None:
    web_app, token = web
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    url = f"/api/v1/sessions/{s.id}/terminal?token={token}&cols=120&rows=40"

    def width() -> str:
        return tmux.display(pa_home, s.id, "#{window_width}")

    async def main() -> None:
        one = Viewer(web_app, url, ORIGIN)
        two = Viewer(web_app, url, ORIGIN)
        assert await one.opened() and await two.opened()
        await one.until(BANNER)
        await two.until(BANNER)
        one.type("typed in the browser\r")  # keystrokes as text frames
        await one.until("got: typed in the browser")
        await two.until("got: typed in the browser")  # every viewer sees the pane
        two.raw(b"raw bytes too\r")
        await one.until("got: raw bytes too")
        one.type(json.dumps({"type": "input", "data": "as a message\r"}))
        await two.until("got: as a message")

        one.type(json.dumps({"type": "resize", "cols": 100, "rows": 30}))
        await eventually(lambda: width() == "100", "window width 100")
        assert tmux.display(pa_home, s.id, "#{window_height}") == "29"  # + the status line
        two.type(json.dumps({"type": "resize", "cols": 90, "rows": 25}))
        await eventually(lambda: width() == "90", "window width 90")

        await one.close()
        await two.close()
        await eventually(
            lambda: not tmux.run(pa_home, "list-clients").stdout.strip(), "viewers detached"
        )

    asyncio.run(main())
    wait_screen(pa_home, s.id, "got: as a message")  # the TUI lives on without viewers
    assert tmux.pane(pa_home, s.id) is not None


def test_auth_origin_and_bad_sessions(
    app: App, repo: Path, pa_home: Path, web: tuple[Any, str]
) -> None:
    web_app, token = web
    s = fake_session(app, repo, "echo")
    wait_screen(pa_home, s.id, BANNER)
    base = f"/api/v1/sessions/{s.id}/terminal"

    async def refused(path: str, headers: dict[str, str]) -> int:
        v = Viewer(web_app, path, headers)
        msg = await v.recv()
        assert msg["type"] == "websocket.close", msg
        await asyncio.wait_for(v.task, STEP)
        return int(msg["code"])

    async def error_then_close(path: str) -> tuple[dict[str, Any], int]:
        v = Viewer(web_app, path, {})
        assert await v.opened()
        err = json.loads((await v.recv())["text"])
        close = await v.recv()
        assert close["type"] == "websocket.close"
        await asyncio.wait_for(v.task, STEP)
        return err, int(close["code"])

    async def main() -> None:
        assert await refused(f"{base}?token={token}", {"origin": "http://evil.example"}) == 1008
        assert await refused(base, ORIGIN) == 1008  # no token
        assert await refused(f"{base}?token=wrong", ORIGIN) == 1008
        # A bearer token and no Origin (a non-browser client) is fine.
        v = Viewer(web_app, base, {"authorization": f"Bearer {token}"})
        assert await v.opened()
        await v.until(BANNER)
        await v.close()

        err, code = await error_then_close(f"/api/v1/sessions/nosuch/terminal?token={token}")
        assert err["type"] == "error" and "no session" in err["error"] and code == 4404
        app.stop(s.id)  # (the test's store lives on this thread)
        err, code = await error_then_close(f"{base}?token={token}")
        assert "no running TUI" in err["error"] and code == 4404

    asyncio.run(main())
