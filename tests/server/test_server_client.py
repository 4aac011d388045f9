"""`parallel_agents.client`: light to import, starts a server on demand, maps errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from parallel_agents.client import (
    Client,
    ServerNotRunning,
    ensure_server,
    event_from_json,
    session_from_json,
)
from parallel_agents.errors import Conflict, NotFound, UsageError
from parallel_agents.models import Status
from parallel_agents.server import daemon
from tests.server.conftest import Srv

PY = sys.executable


def test_import_is_light() -> None:
    code = (
        "import sys, parallel_agents.client, parallel_agents.cli.server\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'httpx', 'pydantic')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([PY, "-c", code], check=True)


def test_ensure_server_starts_one_and_the_client_verbs_work(
    pa_home: Path, repo_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(ServerNotRunning):
        Client.from_home(pa_home)
    c = ensure_server(pa_home)
    try:
        info = daemon.status(pa_home)
        assert info is not None and c.url == info.url
        again = ensure_server(pa_home)
        assert again.health()["pid"] == c.health()["pid"] == info.pid
        again.close()

        repo = c.add_repo(repo_path, name="demo")
        assert repo["name"] == "demo" and [r["name"] for r in c.list_repos()] == ["demo"]
        with pytest.raises(UsageError, match="already registered"):
            c.add_repo(repo_path)

        script = tmp_path / "echo.py"
        script.write_text("import sys\nprint('got', sys.stdin.read(), flush=True)\n")
        made = c.new_sessions("hi there", repo="demo", cmd=f"{PY} {script}", count=2)
        assert len(made) == 2 and all(s["worktree_exists"] for s in made)
        sid = made[0]["id"]
        for ev in c.stream(session_id=sid):
            if ev["kind"] == "attention":
                break
        s = c.get_session(sid[:6])
        assert s["status"] == "idle" and [t["n"] for t in s["turns"]] == [1]
        model = session_from_json(s)
        assert model.status is Status.IDLE and model.id == sid
        evs = c.events(sid)
        assert event_from_json(evs[0]).session_id == sid
        assert any(e["payload"].get("text") == "got hi there" for e in evs)

        after = c.send(sid, "again")
        assert after["status"] in ("queued", "starting", "running")
        for ev in c.stream(session_id=sid, after_id=evs[-1]["id"]):
            if ev["kind"] == "attention":
                break
        assert [t["status"] for t in c.get_session(sid)["turns"]] == ["done", "done"]

        with pytest.raises(NotFound):
            c.get_session("zzzz")
        with pytest.raises(Conflict, match="not discarded"):
            c.restore(sid)
        gone = c.discard(sid)
        assert gone["status"] == "discarded" and gone["worktree_exists"] is False
        assert sid not in [x["id"] for x in c.list_sessions()]
        assert sid in [x["id"] for x in c.list_sessions(all=True)]
        back = c.restore(sid)
        assert back["status"] == "idle" and back["worktree_exists"] is True
        c.discard(made[1]["id"])
        c.discard(sid)
        removed = c.remove_repo("demo")
        assert removed["name"] == "demo" and c.list_repos() == []
    finally:
        c.close()
        daemon.stop(pa_home)
    with pytest.raises(ServerNotRunning):
        c.health()


def test_count_creates_parallel_sessions_with_private_env(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    srv = start_server()
    secret = "sk-test-SECRET-value-123"
    code = "import os; print('key length', len(os.environ['MY_API_KEY']))"
    made = srv.client.new_sessions(
        "same prompt",
        repo=repo_path,
        cmd=[PY, "-c", code],
        count=3,
        title="triple",
        env={"MY_API_KEY": secret},
    )
    assert [s["title"] for s in made] == ["triple"] * 3
    assert len({s["branch"] for s in made}) == 3 and len({s["worktree"] for s in made}) == 3
    for s in made:
        srv.wait_status(s["id"], "idle")
        srv.wait_output(s["id"], f"key length {len(secret)}")
        assert secret not in json.dumps(srv.session(s["id"]))
        assert secret not in json.dumps(srv.client.all_events(s["id"]))
    for name in ("pa.db", "pa.db-wal", "server.log"):
        path = srv.home / name
        assert not path.exists() or secret.encode() not in path.read_bytes(), name
