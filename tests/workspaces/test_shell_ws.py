"""Issue 16 §2: the shell websocket (``/api/v1/sessions/{id}/shell``) through the real app
(auth middleware included) and real tmux; and `pa shell` attached on a real pty."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.server.app import create_app
from parallel_agents.sessions import shell
from tests.interactive.test_attach import Pty
from tests.interactive.test_terminal_ws import ORIGIN, PORT, STEP, Viewer
from tests.workspaces.test_shell import _headless

pytestmark = pytest.mark.usefixtures("tmux_server")
PA = [sys.executable, "-m", "parallel_agents"]


@pytest.fixture
def web(pa_home: Path) -> tuple[Any, str]:
    web_app = create_app(pa_home)
    web_app.state.pa.bind("127.0.0.1", PORT)
    return web_app, web_app.state.pa.token


def test_shell_websocket_types_and_checks_auth(
    tmp_path: Path, pa_home: Path, web: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 16 §2: the websocket starts a headless session's shell and carries keys and
    output; token and Origin are checked as for the TUI terminal."""
    monkeypatch.setenv("SHELL", "/bin/sh")
    web_app, token = web
    s = _headless(tmp_path)
    sid = str(s["id"])
    base = f"/api/v1/sessions/{sid}/shell"

    async def refused(path: str, headers: dict[str, str]) -> int:
        v = Viewer(web_app, path, headers)
        msg = await v.recv()
        assert msg["type"] == "websocket.close", msg
        await asyncio.wait_for(v.task, STEP)
        return int(msg["code"])

    async def main() -> None:
        assert await refused(f"{base}?token={token}", {"origin": "http://evil.example"}) == 1008
        assert await refused(base, ORIGIN) == 1008  # no token
        assert not await asyncio.to_thread(shell.is_running, pa_home, sid)
        v = Viewer(web_app, f"{base}?token={token}&cols=100&rows=30", ORIGIN)
        assert await v.opened()
        v.type("echo SUM=$((40+2))\r")
        await v.until("SUM=42")
        await v.close()
        assert await asyncio.to_thread(shell.is_running, pa_home, sid)  # it outlives viewers
        v = Viewer(web_app, f"/api/v1/sessions/nosuch/shell?token={token}", ORIGIN)
        assert await v.opened()
        err = json.loads((await v.recv())["text"])
        close = await v.recv()
        await asyncio.wait_for(v.task, STEP)
        assert err["type"] == "error" and int(close["code"]) == 4404

    asyncio.run(main())


def test_pa_shell_attaches_on_a_terminal_and_detaches(
    tmp_path: Path, pa_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 16 §2: `pa shell ID` on a real terminal: a shell in the worktree; Ctrl-b d
    detaches and the shell keeps running."""
    monkeypatch.setenv("SHELL", "/bin/sh")
    s = _headless(tmp_path)
    sid = str(s["id"])
    term = Pty([*PA, "shell", sid])
    try:
        term.read_until("Ctrl-b d: detach")
        term.write(b'echo "IN=$(basename "$PWD")"\r')
        term.read_until(f"IN={Path(str(s['worktree'])).name}")
        term.write(b"\x02d")  # Ctrl-b d
        assert term.wait() == 0
    finally:
        term.close()
    assert shell.is_running(pa_home, sid)
