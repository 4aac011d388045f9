"""Getting a client: the running server of this PA_HOME, one started in the background
(waiting until it answers), or, when none may start, the server app in this process."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents.client._client import Client
from parallel_agents.errors import PAError
from parallel_agents.server import daemon
from parallel_agents.server.daemon import ServerInfo, ServerNotRunning

if TYPE_CHECKING:
    from parallel_agents.config import Settings


def autostart_enabled(settings: Settings) -> bool:
    env = os.environ.get("PA_SERVER_AUTOSTART")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    val = settings.get("server.autostart")
    return True if val is None else bool(val)


def connect() -> Client:
    """The running server (started in the background if allowed), else in-process."""
    from parallel_agents.config import load_settings

    settings = load_settings()
    info = daemon.status(settings.home)
    if info is not None:
        return Client.from_home(settings.home)
    # Only when this process may write there (a running server has its home; the store
    # is heavy to import for a thin client).
    from parallel_agents.store import ensure_home

    ensure_home(settings.home)
    if autostart_enabled(settings):
        return ensure_server(settings.home)
    return Client.in_process(settings)


def healthy(info: ServerInfo, token: str, timeout: float = 2.0) -> bool:
    """Does the server of ``info`` answer, and is it that process?"""
    try:
        health = Client(info.url, token, timeout=timeout).health()
    except (PAError, ValueError):
        return False
    return bool(health.get("pid") == info.pid)


def start_background(
    home: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    timeout: float = 30.0,
) -> tuple[ServerInfo, bool]:
    """Start a detached server unless one runs; wait until it answers.

    Returns (info, started): ``started`` is False when a server was already running.
    """
    from parallel_agents.server.auth import read_token

    spawned = daemon.spawn(home, host, port)
    if isinstance(spawned, ServerInfo):
        return spawned, False
    token: str | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if spawned.exited():
            return spawned.winner(), False  # lost a race with another starter: use it
        info = spawned.info()
        if info is not None:
            token = token or read_token(spawned.home)
            if token and healthy(info, token):
                return info, True
        time.sleep(0.05)
    spawned.abandon()
    raise ServerNotRunning(
        f"the server did not answer within {timeout:g} s", hint=f"see {spawned.log_path}"
    )


def ensure_server(home: Path | None = None, *, timeout: float = 30.0) -> Client:
    """A client of this PA_HOME's server, starting one in the background if none runs."""
    from parallel_agents.config import load_settings, pa_home
    from parallel_agents.server.auth import read_token

    h = Path(home) if home is not None else pa_home()
    info = daemon.status(h)
    if info is None:
        settings = load_settings()
        host = str(settings.get("server.host") or "127.0.0.1")
        configured = settings.get("server.port")
        port = daemon.DEFAULT_PORT if configured is None else int(configured)
        # Another PA_HOME's server may hold the default port: any free one will do, since
        # clients find the port in server.json.
        if port and not _port_free(host, port):
            port = 0
        info, _ = start_background(h, host=host, port=port, timeout=timeout)
    token = read_token(h)
    if not token:
        raise ServerNotRunning(f"no token in {h}", hint="restart the server")
    return Client(info.url, token, home=h)


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
