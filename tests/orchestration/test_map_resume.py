"""Issue 15 §4, faults: pa stopped while a map started its sessions. `pa map show` says so,
`pa map resume` starts what never started, and the task whose session was made before
the crash (but not recorded) gets that session back: nothing starts twice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from parallel_agents.sessions.map_items import OUTCOME_ENV
from parallel_agents.sessions.map_report import outcome_file
from parallel_agents.sessions.orchestrator import App
from tests.conftest import git, make_repo, pa

PY = sys.executable


def test_resume_after_a_crash_mid_start(tmp_path: Path) -> None:
    """issue 15 §4: the state a crash leaves (the group made, task 1's session made but not
    recorded, tasks 2 and 3 never started) is resumed without a second session for 1."""
    repo = make_repo(tmp_path / "repo")
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import os\nname = os.environ['PA_PROMPT'].split()[1]\nopen(name + '.txt', 'w').write(name)\n"
    )
    cmd = [PY, str(agent)]
    items = ["one", "two", "three"]
    app = App.open()
    try:
        r = app.add_repo(repo, "r")
        spec = {
            "template": "make {item}", "agent": "command", "cmd": cmd, "model": None,
            "timeout": None, "base_ref": "main", "base_commit": git(repo, "rev-parse", "main").strip(),
            "items": 3, "reduces": [],
        }
        tasks = [
            (str(i), {"item": it, "line": i, "prompt": f"make {it}", "title": f"make {it}"})
            for i, it in enumerate(items, 1)
        ]
        g = app.store.create_group("map", "crashy", r.id, spec, tasks)
        app.store.create_group("map", "never", r.id, spec, tasks)  # died before any start
        # What start_tasks does for task 1, up to the crash: claimed, its session made.
        assert app.store.move_task(g.id, "1", "starting", expect=["waiting"])
        s1 = app.new_session(
            "make one", repo="r", cmd=cmd, base="main",
            env={OUTCOME_ENV: str(outcome_file(app.store.home, g.id, "1"))},
            options={"group": {"id": g.id, "key": "1", "kind": "map", "name": "crashy"}},
        )
    finally:
        app.close()

    p = pa("map", "resume", "crashy", "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["items"][0]["session"] == s1.id, "task 1 keeps the session made before the crash"
    sids = [i["session"] for i in rep["items"]]
    assert all(sids) and len(set(sids)) == 3
    assert len(json.loads(pa("ls", "--all", "--json").stdout)) == 3, "no session made twice"
    assert pa("wait", "--timeout", "60", *sids).returncode == 0
    again = json.loads(pa("map", "resume", "crashy", "--json").stdout)
    assert [i["session"] for i in again["items"]] == sids, "a second resume starts nothing"
    assert again["group"]["state"] == "done" and again["counts"]["not_started"] == 0
    # The report says what never started.
    shown = pa("map", "show", "never")
    assert shown.returncode == 0, shown.stderr
    assert "3 items never started" in shown.stderr and "pa map resume never" in shown.stderr
    p = pa("map", "resume", "nosuch")
    assert p.returncode == 2 and "no group 'nosuch'" in p.stderr
