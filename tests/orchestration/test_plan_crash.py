"""Issue 15 §1: a plan survives a crash at the worst moments of a start. A task claimed
(``starting``) whose session was made but not recorded is found through the session's
options, not started again; one claimed before its session was made starts once; and
passes racing in one process start nothing twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from parallel_agents.sessions import plan_runner, plans
from parallel_agents.sessions.orchestrator import App
from tests.orchestration.test_plan_server import plan_toml, task


def _sessions_by_key(app: App, gid: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in app.store.sessions():
        g = s.options.get("group") or {}
        if g.get("id") == gid:
            out.setdefault(g["key"], []).append(s.id)
    return out


def _run_out(app: App, gid: str) -> dict[str, str]:
    """Drive the plan (ingesting output as the server would) until nothing works."""
    deadline = time.monotonic() + 60
    while True:
        app.refresh()
        plan_runner.drive(app)
        st = {t.key: t.state for t in app.store.group_tasks(gid)}
        if not set(st.values()) & {"waiting", "starting", "running"}:
            return st
        assert time.monotonic() < deadline, st


def test_a_start_cut_short_is_found_not_doubled(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: after a crash between claiming a task and recording its session the
    driver adopts the session it finds by its options; a claim with no session yet goes
    back to waiting and starts once."""
    app = App.open()
    text = plan_toml("crash", task("a", tmp_path), task("b", tmp_path), repo=str(repo))
    g = plans.run(app, text, source="crash.toml")
    # The process died after claiming a and making its session, before recording it ...
    assert app.store.move_task(g.id, "a", "starting", expect=["waiting"])
    made = app.new_session(
        "task a", repo=str(repo), cmd=list(app.store.group_task(g.id, "a").spec["cmd"]),
        options={"group": {"id": g.id, "key": "a"}},
    )
    # ... and after claiming b, before making its session.
    assert app.store.move_task(g.id, "b", "starting", expect=["waiting"])

    plan_runner.drive(app)
    a, b = app.store.group_tasks(g.id)
    assert (a.state, a.session_id) == ("running", made.id)
    assert b.state == "running" and b.session_id is not None
    assert _run_out(app, g.id) == {"a": "done", "b": "done"}
    assert {k: len(v) for k, v in _sessions_by_key(app, g.id).items()} == {"a": 1, "b": 1}
    app.close()


def test_racing_passes_start_each_task_once(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: passes that run at the same time (the loop's and a route's) start
    every task once."""
    app = App.open()
    text = plan_toml("race", *(task(k, tmp_path) for k in "abcd"), repo=str(repo))
    g = plans.run(app, text, source="race.toml")
    go = threading.Barrier(4)

    def one() -> None:
        mine = App.open()  # a store per thread, as the server has
        go.wait()
        plan_runner.drive(mine)
        mine.close()

    threads = [threading.Thread(target=one) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert _run_out(app, g.id) == dict.fromkeys("abcd", "done")
    assert {k: len(v) for k, v in _sessions_by_key(app, g.id).items()} == dict.fromkeys("abcd", 1)
    app.close()
