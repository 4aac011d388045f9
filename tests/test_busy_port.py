"""A busy default port (issue 12 item 5): `pa server start`, `pa up` and `pa serve` without
--port listen on any free port when the setting's port (default 7317) is taken, as autostart
does; a port asked for with --port stays an error."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import pa

DEFAULT_PORT = 7317


def _hold(port: int) -> socket.socket | None:
    """Listen on ``port`` (None when something else already does: busy all the same)."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        assert e.errno == errno.EADDRINUSE, e
        return None
    sock.listen(1)
    return sock


@pytest.fixture
def busy_default_port() -> Iterator[int]:
    sock = _hold(DEFAULT_PORT)
    try:
        yield DEFAULT_PORT
    finally:
        if sock is not None:
            sock.close()


@pytest.fixture
def stop_server() -> Iterator[None]:
    yield
    pa("server", "stop", timeout=60)


def test_server_start_on_a_busy_default_port_takes_a_free_one(
    busy_default_port: int, stop_server: None
) -> None:
    """issue 12 item 5: `pa server start` with 7317 taken starts on another port."""
    p = pa("server", "start", "--json", timeout=60)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["started"] is True and info["port"] not in (0, busy_default_port)
    assert pa("server", "status").returncode == 0


def test_up_on_a_busy_configured_port_takes_a_free_one(pa_home: Path, stop_server: None) -> None:
    """issue 12 item 5: `pa up` with the server.port setting taken starts on another port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "parallel-agents" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[server]\nport = {port}\n")
    try:
        p = pa("up", "--no-open", "--json", timeout=60)
        assert p.returncode == 0, p.stderr
        d = json.loads(p.stdout)
        assert d["started"] is True and not d["url"].endswith(f":{port}"), d
    finally:
        sock.close()


def test_serve_on_a_busy_default_port_takes_a_free_one(
    busy_default_port: int, pa_home: Path
) -> None:
    """issue 12 item 5: foreground `pa serve` too; it says where it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "parallel_agents", "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and " on http://" not in line:
            line = proc.stderr.readline()
        assert " on http://127.0.0.1:" in line, line
        assert f":{busy_default_port} " not in line
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_an_explicit_busy_port_is_still_an_error(busy_default_port: int) -> None:
    """issue 12 item 5 (kept as it was): --port names the one port to use, so a busy one
    is an error with a hint."""
    p = pa("server", "start", "--port", str(busy_default_port), timeout=60)
    assert p.returncode != 0
    assert "already in use" in p.stderr and "hint:" in p.stderr and "--port" in p.stderr
