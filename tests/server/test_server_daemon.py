"""`pa serve`, `pa server start|stop|status`: one server per PA_HOME, stale files, ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.server.conftest import PA, Srv, pa_cli, wait_for


def test_start_status_stop(start_server: Callable[..., Srv], pa_home: Path) -> None:
    srv = start_server()
    info = srv.info
    assert info["started"] is True
    for key in ("pid", "url", "port", "version", "uptime", "login_url", "started_at"):
        assert key in info, key
    assert info["url"] == f"http://127.0.0.1:{info['port']}"
    assert info["port"] != 0

    token = (pa_home / "token").read_text().strip()
    assert len(token) >= 40
    assert stat.S_IMODE((pa_home / "token").stat().st_mode) == 0o600
    assert info["login_url"].startswith(f"{info['url']}/login/once?code=")
    assert token not in info["login_url"]
    on_disk = json.loads((pa_home / "server.json").read_text())
    assert on_disk["pid"] == info["pid"] and on_disk["port"] == info["port"]

    p = pa_cli("server", "status")
    assert p.returncode == 0, p.stderr
    for text in (str(info["pid"]), info["url"], "uptime", info["version"], "login/once"):
        assert text in p.stdout
    assert token not in p.stdout
    st = json.loads(pa_cli("server", "status", "--json").stdout)
    assert st["running"] is True and st["pid"] == info["pid"] and st["healthy"] is True

    # Starting again reuses the running server.
    again = pa_cli("server", "start", "--port", "0", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["pid"] == info["pid"]
    assert json.loads(again.stdout)["started"] is False

    # A second `pa serve` on the same PA_HOME refuses and names the running one.
    second = pa_cli("serve", "--port", "0", timeout=30)
    assert second.returncode != 0
    assert "already running" in second.stderr
    assert str(info["pid"]) in second.stderr and info["url"] in second.stderr
    health = srv.client.health()  # still fine
    assert health["pid"] == info["pid"] and health["version"] == info["version"]
    assert health["supervisor"]["alive"] is True and health["supervisor"]["ticks"] > 0
    assert health["uptime"] >= 0

    stopped = pa_cli("server", "stop")
    assert stopped.returncode == 0 and str(info["pid"]) in stopped.stdout
    assert not (pa_home / "server.json").exists()
    gone = pa_cli("server", "status", "--json")
    assert gone.returncode == 1 and json.loads(gone.stdout) == {"running": False}
    assert "no server running" in pa_cli("server", "stop").stdout


def test_stale_files_from_a_dead_server_are_taken_over(
    start_server: Callable[..., Srv], pa_home: Path
) -> None:
    pa_home.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = {
        "pid": dead.pid,
        "host": "127.0.0.1",
        "port": 1,
        "url": "http://127.0.0.1:1",
        "version": "0.0.0",
        "started_at": 1.0,
        "home": str(pa_home),
    }
    (pa_home / "server.json").write_text(json.dumps(stale))
    (pa_home / "server.lock").write_text(f"{dead.pid}\n")
    assert pa_cli("server", "status").returncode == 1

    srv = start_server()
    assert srv.pid != dead.pid
    assert json.loads((pa_home / "server.json").read_text())["pid"] == srv.pid
    assert srv.client.health()["pid"] == srv.pid

    # Killed outright: the lock dies with it, and the next start takes over again.
    srv.kill9()
    assert pa_cli("server", "status").returncode == 1
    srv.start()
    assert srv.client.health()["pid"] == srv.pid


def test_port_in_use_is_a_clear_error(start_server: Callable[..., Srv], pa_home: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        p = pa_cli("serve", "--port", str(port), timeout=30)
        assert p.returncode == 2
        assert f"port {port}" in p.stderr and "already in use" in p.stderr
        assert "--port" in p.stderr  # suggests another port
        assert not (pa_home / "server.json").exists()

        bg = pa_cli("server", "start", "--port", str(port))
        assert bg.returncode != 0
        assert "already in use" in bg.stderr and "--port" in bg.stderr
    finally:
        busy.close()
    # The failed attempts left nothing that blocks a server.
    srv = start_server()
    assert srv.client.health()["pid"] == srv.pid


def test_foreground_serve_stops_cleanly_on_sigterm(pa_home: Path) -> None:
    proc = subprocess.Popen(
        [*PA, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        info = wait_for(
            lambda: (
                (pa_home / "server.json").exists()
                and json.loads((pa_home / "server.json").read_text())
            ),
            30,
            "server.json",
        )
        assert info["pid"] == proc.pid
        assert pa_cli("server", "status").returncode == 0
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert not (pa_home / "server.json").exists()
    token = (pa_home / "token").read_text().strip()
    assert token not in err.decode()


def test_concurrent_starts_agree_on_one_server(pa_home: Path) -> None:
    procs = [
        subprocess.Popen(
            [*PA, "server", "start", "--port", "0", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outs
        infos = [json.loads(out) for out, _ in outs]
        assert len({i["pid"] for i in infos}) == 1
        assert sorted(i["started"] for i in infos) == [False, False, True]
    finally:
        pa_cli("server", "stop")
