"""Issue 15 §1: a plan task with `attempts = N` runs as a best-of-N group (N sessions on
one base); the plan waits for `pa pick` (even with auto_merge), the pick merges the winner
and the plan goes on from there; nothing starts twice."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import git, pa
from tests.orchestration.test_plan_server import gate, plan_toml, task


def _show(name: str) -> dict[str, Any]:
    p = pa("plan", "show", name, "--json")
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def _wait(name: str, pred: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        out = _show(name)
        if pred({t["key"]: t for t in out["tasks"]}):
            return out
        assert time.monotonic() < deadline, f"waited for {what}: {out}"


def test_a_task_with_attempts_waits_for_a_pick(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: x (attempts = 2) starts two sessions as the attempts group
    <plan>.x; when both end x is done and says to pick; y (after x) waits; `pa pick`
    merges attempt 2, x is merged with that session, y starts on it and the plan ends."""
    f = tmp_path / "p.toml"
    f.write_text(
        plan_toml(
            "best",
            task("x", tmp_path, attempts=2),
            task("y", tmp_path, needs=("x.txt",), depends_on=["x"]),
            repo=str(repo),
            auto_merge=True,
        )
    )
    p = pa("plan", "run", str(f))
    assert p.returncode == 0, p.stderr
    out = _wait("best", lambda t: t["x"]["state"] == "done", "x's attempts ended")
    t = {x["key"]: x for x in out["tasks"]}
    assert t["x"]["session"] is None and t["y"]["state"] == "waiting"
    gid = t["x"]["attempts"]["group"]
    assert t["x"]["attempts"]["n"] == 2
    assert "compare them (pa compare best.x) and pick one (pa pick best.x ATTEMPT)" in (
        t["x"]["outcome"]["waiting"]
    )
    text = pa("plan", "show", "best").stdout
    assert "2 attempts" in text and "pa pick best.x" in " ".join(text.split())
    cmp = json.loads(pa("compare", "best.x", "--json").stdout)
    assert [r["status"] for r in cmp["attempts"]] == ["idle", "idle"]
    winner = cmp["attempts"][1]["session"]

    p = pa("pick", "best.x", "2")
    assert p.returncode == 0, p.stdout + p.stderr
    out = _wait("best", lambda t: t["y"]["state"] == "merged", "y merged")
    t = {x["key"]: x for x in out["tasks"]}
    assert t["x"]["state"] == "merged" and t["x"]["session"] == winner
    assert t["x"]["outcome"]["picked"] == "2" and t["x"]["outcome"]["attempts"] == gid
    assert out["plan"]["state"] == "finished"
    assert t["x"]["merged_at"] <= t["y"]["started_at"]
    assert {"x.txt", "y.txt"} <= set(git(repo, "ls-tree", "--name-only", "main").split())
    # Two attempt sessions and one for y: nothing started twice.
    sessions = json.loads(pa("ls", "--all", "--json").stdout)
    assert len(sessions) == 3, sessions


def test_attempts_above_the_cap_are_refused(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: attempts above limits.max_attempts refuse the plan, naming the task."""
    f = tmp_path / "p.toml"
    f.write_text(plan_toml("big", task("x", tmp_path, attempts=1000), repo=str(repo)))
    p = pa("plan", "run", str(f))
    assert p.returncode == 2, p.stderr
    assert "task 'x': attempts = 1000 is more than the setting limits.max_attempts" in p.stderr


def test_stop_and_resume_a_task_with_attempts(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: `pa plan stop` stops every attempt of a task at work (they wait at a
    gate), `pa plan resume` continues each in its own session (turn 2), and the task
    waits for the pick as before; still two sessions."""
    g = gate(tmp_path, "x")
    f = tmp_path / "p.toml"
    f.write_text(plan_toml("halt", task("x", tmp_path, attempts=2, gate=g), repo=str(repo)))
    assert pa("plan", "run", str(f)).returncode == 0
    _wait("halt", lambda t: t["x"]["state"] == "running", "x at work")
    p = pa("plan", "stop", "halt", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["stopped"] == ["x"]
    _wait("halt", lambda t: t["x"]["state"] == "stopped", "x stopped")
    p = pa("plan", "resume", "halt", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["continued"] == ["x"]
    out = _wait("halt", lambda t: t["x"]["state"] == "done", "x's attempts ended")
    [t] = out["tasks"]
    assert "pa pick halt.x ATTEMPT" in t["outcome"]["waiting"]
    cmp = json.loads(pa("compare", "halt.x", "--json").stdout)
    assert [r["status"] for r in cmp["attempts"]] == ["idle", "idle"]
    assert len(json.loads(pa("ls", "--all", "--json").stdout)) == 2


def test_attempts_made_before_a_crash_are_adopted(repo: Path, tmp_path: Path) -> None:
    """issue 15 §1: the process died after claiming a task with attempts and making its
    attempts group, before recording it: the next pass finds the group by its name
    (PLAN.TASK) and starts no second one; a claim with no group yet starts once."""
    from parallel_agents.sessions import attempts, plan_runner, plans
    from parallel_agents.sessions.orchestrator import App

    app = App.open()
    try:
        text = plan_toml(
            "crash", task("a", tmp_path, attempts=2), task("b", tmp_path, attempts=2),
            repo=str(repo),
        )
        g = plans.run(app, text, source="crash.toml")
        assert app.store.move_task(g.id, "a", "starting", expect=["waiting"])
        cmd = list(app.store.group_task(g.id, "a").spec["cmd"])
        made, _ = attempts.start(app, "task a", 2, ["command"], repo=str(repo), cmd=cmd,
                                 name="crash.a")
        assert app.store.move_task(g.id, "b", "starting", expect=["waiting"])
        plan_runner.drive(app)  # a adopted; b back to waiting (its start was cut short)
        plan_runner.drive(app)  # b starts, once
        a, b = app.store.group_tasks(g.id)
        assert (a.state, a.outcome["attempts"]) == ("running", made.id)
        assert b.state == "running" and b.outcome["attempts"] == app.store.group("crash.b").id
        assert len(app.store.groups("attempts")) == 2
        assert len(app.store.sessions()) == 4
    finally:
        app.close()
