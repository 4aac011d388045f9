"""The terminal websocket: a browser (xterm.js) on an interactive session's tmux pane.

``WS /api/v1/sessions/{id}/terminal`` (token and Origin checked like every websocket).
Each connection is one more tmux client of pa's own server, attached to the session on a
pseudo-terminal: tmux itself draws the screen for every viewer, so any number of viewers
see the same pane at once, each with a correct full redraw on connect.

Protocol:

* server → client: binary frames, the terminal output (UTF-8 bytes, escape sequences
  included) to write into xterm.js as they come. Before closing, one text frame
  ``{"type": "exit", "reason": ...}`` (session ended, viewer detached with Ctrl-b d, …);
  on a bad request a text frame ``{"type": "error", "error": ..., "hint": ...}`` and
  close code 4404 (no such session / no TUI) or 4400 (not interactive).
* client → server: binary frames or text frames are keystrokes, passed through as raw
  bytes (so escape sequences from xterm.js ``onData`` work); a text frame holding a JSON
  object is a control message: ``{"type": "resize", "cols": C, "rows": R}`` or
  ``{"type": "input", "data": "text"}``.

Query parameters ``cols`` and ``rows`` give the initial size (default: the pane's).

``WS /api/v1/sessions/{id}/shell`` (issue 16 §2) speaks the same protocol to the session's
shell (sessions/shell.py), started on connect if it is not running: any session has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from parallel_agents.errors import PAError
from parallel_agents.runtime import tmux
from parallel_agents.server.auth import check_ws
from parallel_agents.server.loop import ServerState
from parallel_agents.server.routes._request import server_state

router = APIRouter()

READ_SIZE = 65536
MAX_BACKLOG = 64  # output chunks queued for a slow viewer before reading pauses
MAX_COLS = 1000
MAX_ROWS = 500

# Makes the pty the controlling terminal of the tmux client, so a resize reaches it as
# SIGWINCH (Popen's start_new_session alone leaves it without one).
_TRAMPOLINE = (
    "import os,sys,fcntl,termios\n"
    "os.setsid()\n"
    "fcntl.ioctl(0,termios.TIOCSCTTY,0)\n"
    "os.execvpe(sys.argv[1],sys.argv[1:],os.environ)\n"
)


class PaneClient:
    """One tmux client attached to a session's pane on a pseudo-terminal."""

    def __init__(self, home: Path, sid: str, cols: int, rows: int, name: str = "") -> None:
        self.home = home
        self.sid = sid
        self.name = name or tmux.session_name(sid)  # the tmux session: the TUI's or a shell
        master, slave = pty.openpty()
        self.fd = master
        self.set_size(cols, rows)
        argv = tmux.tmux_argv(home, "attach-session", "-t", f"={self.name}")
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        env["TERM"] = "xterm-256color"
        env.setdefault("LANG", "C.UTF-8")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-c", _TRAMPOLINE, *argv],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                close_fds=True,
            )
        except OSError:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)

    def set_size(self, cols: int, rows: int) -> None:
        cols = max(2, min(MAX_COLS, cols))
        rows = max(2, min(MAX_ROWS, rows))
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                import select

                select.select([], [self.fd], [], 1.0)
                continue
            view = view[n:]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=2)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _int(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _lookup(state: ServerState, sid: str) -> tuple[str, int, int]:
    """The session's id and its pane size; raises PAError when there is no TUI to show."""
    from parallel_agents.errors import NotFound, UsageError

    app = state.app()
    s = app.store.resolve_session(sid)
    if not s.interactive:
        raise UsageError(
            f"session {s.id} is not interactive: it has no terminal",
            hint="its output is in the events stream",
        )
    if tmux.pane(app.store.home, s.id) is None:
        raise NotFound(
            f"session {s.id} has no running TUI",
            hint=f"send a follow-up to start it again (pa send {s.id} PROMPT)",
        )
    cols, rows = tmux.pane_size(app.settings)
    with contextlib.suppress(PAError, ValueError):
        w, h = tmux.display(app.store.home, s.id, "#{window_width} #{window_height}").split()
        cols, rows = int(w), int(h) + 1  # + the status line
    return s.id, cols, rows


@router.websocket("/api/v1/sessions/{sid}/terminal")
async def terminal(websocket: WebSocket, sid: str) -> None:
    if not await check_ws(websocket):
        return
    state = server_state(websocket)
    await websocket.accept()
    try:
        real_id, cols, rows = await run_in_threadpool(_lookup, state, sid)
    except PAError as e:
        from parallel_agents.errors import NotFound

        code = 4404 if isinstance(e, NotFound) else 4400
        await websocket.send_text(json.dumps({"type": "error", "error": e.message, "hint": e.hint}))
        await websocket.close(code=code, reason=e.message[:120])
        return
    q = websocket.query_params
    cols = _int(q.get("cols"), cols)
    rows = _int(q.get("rows"), rows)
    try:
        client = await run_in_threadpool(PaneClient, state.home, real_id, cols, rows)
    except (OSError, PAError) as e:
        msg = e.message if isinstance(e, PAError) else str(e)
        await websocket.send_text(json.dumps({"type": "error", "error": msg, "hint": None}))
        await websocket.close(code=1011, reason=msg[:120])
        return
    await _bridge(websocket, client, state.home, real_id)


def _start_shell(state: ServerState, sid: str, cols: int, rows: int) -> tuple[str, str]:
    from parallel_agents.sessions import shell

    app = state.app()
    s = app.store.resolve_session(sid)
    return s.id, shell.ensure(app.store, s, cols, max(2, rows - 1))


@router.websocket("/api/v1/sessions/{sid}/shell")
async def shell_terminal(websocket: WebSocket, sid: str) -> None:
    """Issue 16 §2: the session's shell, for any session (headless too)."""
    if not await check_ws(websocket):
        return
    state = server_state(websocket)
    await websocket.accept()
    q = websocket.query_params
    cols, rows = _int(q.get("cols"), 120), _int(q.get("rows"), 40)
    try:
        real_id, name = await run_in_threadpool(_start_shell, state, sid, cols, rows)
        client = await run_in_threadpool(PaneClient, state.home, real_id, cols, rows, name)
    except (OSError, PAError) as e:
        from parallel_agents.errors import NotFound

        msg, hint = (e.message, e.hint) if isinstance(e, PAError) else (str(e), None)
        code = 4404 if isinstance(e, NotFound) else 4400 if isinstance(e, PAError) else 1011
        await websocket.send_text(json.dumps({"type": "error", "error": msg, "hint": hint}))
        await websocket.close(code=code, reason=msg[:120])
        return
    await _bridge(websocket, client, state.home, real_id)


async def _bridge(websocket: WebSocket, client: PaneClient, home: Path, sid: str) -> None:
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[bytes | None] = asyncio.Queue()
    reading = True

    def on_readable() -> None:
        nonlocal reading
        try:
            data = os.read(client.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the tmux client exited
            data = b""
        if not data:
            loop.remove_reader(client.fd)
            reading = False
            out.put_nowait(None)
            return
        out.put_nowait(data)
        if out.qsize() >= MAX_BACKLOG:
            loop.remove_reader(client.fd)
            reading = False

    def resume_reading() -> None:
        nonlocal reading
        if not reading and client.proc.poll() is None:
            reading = True
            loop.add_reader(client.fd, on_readable)

    loop.add_reader(client.fd, on_readable)

    async def pump_out() -> str:
        while True:
            data = await out.get()
            if data is None:
                return "the terminal was detached or the session ended"
            await websocket.send_bytes(data)
            if out.qsize() < MAX_BACKLOG // 2:
                resume_reading()

    async def pump_in() -> str:
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return "disconnect"
            raw = msg.get("bytes")
            text = msg.get("text")
            if raw:
                await run_in_threadpool(client.write, raw)
            elif text:
                await _handle_text(client, home, sid, text)

    tasks = [asyncio.create_task(pump_out()), asyncio.create_task(pump_in())]
    reason = "closed"
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                reason = t.result()
    except WebSocketDisconnect:
        reason = "disconnect"
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(client.fd)
        await run_in_threadpool(client.close)
    if reason != "disconnect" and websocket.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.send_text(json.dumps({"type": "exit", "reason": reason}))
            await websocket.close(code=1000, reason=reason[:120])


async def _handle_text(client: PaneClient, home: Path, sid: str, text: str) -> None:
    if text.startswith("{"):
        try:
            ctl = json.loads(text)
        except ValueError:
            ctl = None
        if isinstance(ctl, dict) and ctl.get("type") == "resize":
            cols = _int(ctl.get("cols"), 0)
            rows = _int(ctl.get("rows"), 0)
            if cols > 0 and rows > 0:
                await run_in_threadpool(_resize, client, home, sid, cols, rows)
            return
        if isinstance(ctl, dict) and ctl.get("type") == "input":
            data = ctl.get("data")
            if isinstance(data, str) and data:
                await run_in_threadpool(client.write, data.encode("utf-8"))
            return
    await run_in_threadpool(client.write, text.encode("utf-8"))


def _resize(client: PaneClient, home: Path, sid: str, cols: int, rows: int) -> None:
    """This viewer's terminal size, and the window's: the last viewer to resize wins."""
    cols = max(2, min(MAX_COLS, cols))
    rows = max(2, min(MAX_ROWS, rows))
    client.set_size(cols, rows)
    # rows - 1: tmux's status line takes the last row of the viewer's terminal.
    tmux.run(
        home,
        "resize-window",
        "-t",
        f"={client.name}:",
        "-x",
        str(cols),
        "-y",
        str(max(1, rows - 1)),
        check=False,
    )
