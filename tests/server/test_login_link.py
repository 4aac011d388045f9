"""`pa server status` prints a one-time login link, never the token; the server's log is
private; binding beyond loopback over plain HTTP is warned about (issue 11 H)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx

from parallel_agents.cli import server as cli_server
from tests.server.conftest import Srv, pa_cli


def test_status_prints_a_one_time_link_not_the_token(
    start_server: Callable[..., Srv], pa_home: Path
) -> None:
    """issue 11 H: the status's login link holds a one-time code (browser history and tab
    sync keep a dead link), never the permanent token; the link logs in exactly once."""
    srv = start_server()
    assert srv.token not in json.dumps(srv.info)
    p = pa_cli("server", "status")
    assert p.returncode == 0, p.stderr
    assert srv.token not in p.stdout and "/login/once?code=" in p.stdout
    assert "warning" not in p.stdout + p.stderr  # loopback: nothing to warn about
    link = json.loads(pa_cli("server", "status", "--json").stdout)["login_url"]
    assert link.startswith(f"{srv.url}/login/once?code=") and srv.token not in link
    with httpx.Client() as h:
        first = h.get(link)
        assert first.status_code == 303 and "pa_session=" in first.headers["set-cookie"]
    with httpx.Client() as h:
        assert h.get(link).status_code == 401  # used up


def test_server_log_is_private(start_server: Callable[..., Srv], pa_home: Path) -> None:
    """issue 11 H: server.log (session ids, paths, errors) is 0600, PA_HOME 0700."""
    start_server()
    assert stat.S_IMODE((pa_home / "server.log").stat().st_mode) == 0o600
    assert stat.S_IMODE(pa_home.stat().st_mode) == 0o700


def test_listening_beyond_loopback_is_warned_about() -> None:
    """issue 11 H: a server on a non-loopback address speaks plain HTTP: say so."""
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2", None):
        assert cli_server.exposure_warning(host) is None, host
    for host in ("0.0.0.0", "::", "192.168.1.5", "myhost.example"):
        w = cli_server.exposure_warning(host)
        assert w is not None and "plain HTTP" in w, host
