"""Issue 12 item 7: status words a user believes.

A session that can start at once goes `starting → running`; it is `queued` only while
it really waits for a place (limits.max_running and friends). `pa new` printed "queued"
and `pa logs` showed `starting → queued → starting → running` with nothing waiting.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import make_repo, pa
from tests.server.conftest import Srv, pa_cli

PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(120)"]


def _moves(events: list[dict[str, object]]) -> list[str]:
    out = []
    for e in events:
        p = e["payload"]
        if e["kind"] == "status" and isinstance(p, dict) and "from" in p:
            out.append(f"{p['from']}>{p['to']}")
    return out


def test_new_and_send_never_show_queued_when_nothing_waits(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """Issue 12 item 7 (server): `pa new` and `pa send` report `starting`, and the
    session's status events are starting>running>idle, idle>starting>running>idle."""
    srv = start_server()
    env = {"PA_HOME": str(srv.home)}
    p = pa_cli("new", "hi", "--repo", str(repo_path), "--cmd", f"{PY} -c pass", "--json", env=env)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["status"] in ("starting", "running", "idle"), s["status"]
    srv.wait_status(s["id"], "idle")
    p = pa_cli("send", s["id"], "again", "--json", env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] in ("starting", "running", "idle")
    srv.wait_status(s["id"], "idle")
    moves = _moves(srv.client.all_events(s["id"]))
    assert moves == [
        "starting>running",
        "running>idle",
        "idle>starting",
        "starting>running",
        "running>idle",
    ], moves
    out = pa_cli("logs", s["id"], env=env).stdout
    assert "queued" not in out


def test_queued_only_while_waiting_for_a_place(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """Issue 12 item 7: with limits.max_running = 1 and one session running, the next is
    `queued` (it waits), and starts when the place is free."""
    srv = start_server(config="[limits]\nmax_running = 1\n")
    [first] = srv.client.new_sessions("sleep", repo=repo_path, cmd=SLEEPER)
    srv.wait_status(first["id"], "running")
    [second] = srv.client.new_sessions("then me", repo=repo_path, cmd=[PY, "-c", "pass"])
    assert second["status"] == "queued"
    srv.client.stop(first["id"])
    srv.wait_status(second["id"], "idle")
    assert _moves(srv.client.all_events(second["id"])) == [
        "starting>queued",
        "queued>starting",
        "starting>running",
        "running>idle",
    ]


def test_in_process_new_goes_straight_to_running(tmp_path: Path) -> None:
    """Issue 12 item 7 (no server, PA_SERVER_AUTOSTART=0): `pa new` reports `running`
    and `pa logs` shows no `queued`."""
    repo = make_repo(tmp_path / "repo")
    p = pa("new", "hi", "--cmd", f"{PY} -c pass", "--json", cwd=repo)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["status"] in ("running", "idle")
    assert pa("wait", "--timeout", "60", s["id"]).returncode == 0
    events = [json.loads(x) for x in pa("logs", "--json", s["id"]).stdout.splitlines()]
    assert _moves(events) == ["starting>running", "running>idle"]
