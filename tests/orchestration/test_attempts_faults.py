"""Issue 15 §2, faults: an attempt that fails, a crash between making an attempt's session
and recording it, and the whole flow through the background server.

Real git, the real `pa` CLI and `command` agents.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from parallel_agents.sessions.orchestrator import App
from parallel_agents.store import Store
from tests.conftest import git, make_repo, pa
from tests.orchestration.test_attempts import AGENT, agent, ok, refused, settle, start


def test_an_attempt_that_fails_is_shown_and_the_others_can_win(tmp_path: Path) -> None:
    """issue 15 §2: one of three attempts fails; compare shows it failed with its error,
    and picking another merges it and discards (archives) the failed one too."""
    repo = make_repo(tmp_path / "proj")
    marker = tmp_path / "first"
    body = (
        "import os, sys\n"
        "try:\n"
        f"    os.close(os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))\n"
        "except FileExistsError:\n"
        "    pass\n"
        "else:\n"
        "    print('cannot do it', file=sys.stderr)\n"
        "    sys.exit(3)\n" + AGENT
    )
    d = ok("new", "solve", "--attempts", "3", "--cmd", agent(tmp_path, body), "--json", cwd=repo)
    ids = [s["id"] for s in d["sessions"]]
    p = pa("wait", "--timeout", "60", *ids)
    assert p.returncode == 1, p.stdout + p.stderr  # one failed
    c = ok("compare", d["group"]["name"], "--json")
    failed = [r for r in c["attempts"] if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["task"] == "failed" and failed[0]["error"]
    winner = next(r for r in c["attempts"] if r["status"] == "idle")
    out = ok("pick", d["group"]["name"], winner["attempt"], "--json")
    assert out["merge"]["merged"] == [winner["session"]]
    assert failed[0]["session"] in [x["session"] for x in out["discarded"]]
    assert git(repo, "show", "main:solution.txt") == f"{winner['session']}\n"


def test_a_session_made_before_a_crash_is_found_again(tmp_path: Path) -> None:
    """issue 15 §2: a crash after an attempt's session was made but before its task
    recorded it: the next look at the group finds the session by its options."""
    repo = make_repo(tmp_path / "proj")
    app = App.open()
    try:
        r = app.add_repo(repo)
        g = app.store.create_group("attempts", "crashed", r.id, {"prompt": "p"}, [("1", {})])
        assert app.store.move_task(g.id, "1", "starting", expect=["waiting"])
        s = app.new_session(
            "p", repo=r.name, cmd=agent(tmp_path).split(), options={"group": {"id": g.id, "key": "1"}}
        )
    finally:
        app.close()
    assert pa("wait", "--timeout", "60", s.id).returncode == 0
    c = ok("compare", "crashed", "--json")
    [row] = c["attempts"]
    assert (row["session"], row["task"], row["status"]) == (s.id, "done", "idle")
    st = Store(Path(os.environ["PA_HOME"]))
    assert st.group_task(g.id, "1").session_id == s.id
    st.close()


@pytest.mark.usefixtures("server_mode")
def test_attempts_compare_judge_and_pick_through_the_server(tmp_path: Path) -> None:
    """issue 15 §2: the same verbs through the background server (its loop drives the
    sessions and the judge's answer is read by the server)."""
    repo = make_repo(tmp_path / "proj")
    d = start(repo, tmp_path, 2)
    ids = settle(d)
    name = d["group"]["name"]
    answer = json.dumps(
        {"ranking": [{"attempt": "1", "score": 6, "reason": "a"}, {"attempt": "2", "score": 3, "reason": "b"}]}
    )
    judge = agent(tmp_path, f"print({answer!r})\n", "judge.py")
    c = ok("compare", name, "--judge", "command", "--cmd", judge, "--json")
    assert [r["score"] for r in c["attempts"]] == [6, 3]
    before = len(ok("ls", "--all", "--json"))
    assert "already" in refused("new", "x", "--attempts", "2", "--group", name, "--cmd", judge, cwd=repo)
    assert len(ok("ls", "--all", "--json")) == before  # a taken name makes nothing
    out = ok("pick", name, "1", "--json")
    assert out["merge"]["merged"] == [ids[0]] and [x["session"] for x in out["discarded"]] == [ids[1]]
    assert "picked already" in refused("pick", name, "2", code=1)
