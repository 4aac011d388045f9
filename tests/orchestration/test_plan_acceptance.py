"""Issue 15 §1, done when: a plan of 6 tasks with dependencies and a conflicts_with pair
runs to the end with auto_merge on command agents, in the right order (asserted from the
recorded start and merge times), surviving a server killed with SIGKILL mid-plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.orchestration.test_plan_server import (
    by_key,
    files_on,
    gate,
    open_gate,
    plan_toml,
    sessions_of,
    states,
    task,
    wait_plan,
)
from tests.server.conftest import Srv, kill_agents, pa_cli, repo_path, start_server

__all__ = ["repo_path", "start_server"]  # fixtures, used by name

# task -> what it depends on (each writes <task>.txt and checks its dependencies' files)
GRAPH = {
    "a": [],
    "b": [],
    "c": ["a"],
    "d": ["a", "b"],
    "e": ["c", "d"],
    "f": ["e"],
}


def test_six_tasks_in_order_through_a_server_kill(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """issue 15 §1: b and c never run at once (conflicts_with); every task starts after its
    dependencies are merged, on a base holding their files; the server is killed while b
    works and c is held back; after the restart and `pa plan resume` the plan runs to the
    end and no task has two sessions."""
    srv = start_server()
    g = gate(tmp_path, "b")
    tasks = []
    for tid, deps in GRAPH.items():
        extra: dict[str, object] = {"depends_on": deps} if deps else {}
        if tid == "b":
            extra["conflicts_with"] = ["c"]
        if tid == "e":
            extra["check"] = "test -f e.txt"
        needs = tuple(f"{d}.txt" for d in deps)
        tasks.append(task(tid, tmp_path, needs=needs, gate=g if tid == "b" else None, **extra))
    plan_file = tmp_path / "six.toml"
    plan_file.write_text(plan_toml("six", *tasks, repo=str(repo_path), auto_merge=True))
    p = pa_cli("plan", "run", str(plan_file), "--json", env=srv.env)
    assert p.returncode == 0, p.stdout + p.stderr
    gid = json.loads(p.stdout)["plan"]["id"]

    # a merges; c could start now but b (its conflicts_with partner) works at the gate.
    def c_held(o: dict[str, Any]) -> bool:
        s = states(o)
        return s["a"] == "merged" and s["b"] == "running" and "held" in by_key(o)["c"]["outcome"]

    out = wait_plan(srv, "six", c_held, "a merged, c held back by b")
    srv.wait_output(by_key(out)["b"]["session"], "at the gate")
    out = srv.client.plan("six")
    assert states(out) == {
        "a": "merged", "b": "running", "c": "waiting", "d": "waiting", "e": "waiting", "f": "waiting",
    }
    assert "conflicts_with b, which is running" in by_key(out)["c"]["outcome"]["held"]

    srv.kill9()
    srv.start()
    p = pa_cli("plan", "resume", "six", "--json", env=srv.env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["plan"]["state"] == "running"
    open_gate(g)

    out = wait_plan(
        srv, "six", lambda o: o["plan"]["state"] == "finished", "the plan to finish", timeout=180
    )
    t = by_key(out)
    assert {k: v["state"] for k, v in t.items()} == dict.fromkeys(GRAPH, "merged")
    for tid, deps in GRAPH.items():
        for d in deps:
            assert t[d]["merged_at"] <= t[tid]["started_at"], (d, tid)
    # b and c never overlapped: c started after b's turn ended.
    assert t["b"]["ended_at"] <= t["c"]["started_at"]
    assert t["e"]["check"]["ok"] is True
    assert {k: len(v) for k, v in sessions_of(srv, gid).items()} == dict.fromkeys(GRAPH, 1)
    assert files_on(repo_path) == {"README.md", "src", *(f"{k}.txt" for k in GRAPH)}

    # The table a person reads.
    p = pa_cli("plan", "show", "six", env=srv.env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("plan six (") and lines[0].endswith("finished")
    assert lines[1].split("\t")[:5] == ["TASK", "STATE", "SESSION", "CHECK", "MERGED"]
    row_e = next(ln.split("\t") for ln in lines[2:] if ln.startswith("e\t"))
    assert row_e[1] == "merged" and row_e[2] == t["e"]["session"] and row_e[3:5] == ["pass", "yes"]
    kill_agents(srv.home)
