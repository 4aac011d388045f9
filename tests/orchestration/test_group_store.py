"""Issue 15: the store's groups and tasks, the footing of attempts, map-reduce and plans.

A task's state moves by compare and set, so a scheduler that runs twice (or again after
a crash) cannot start one task twice; a task's session is found by its options even
when the crash came before the task recorded it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from parallel_agents.errors import NotFound, UsageError
from parallel_agents.models import Session, Status
from parallel_agents.store import Store


def _session(st: Store, repo_id: int, sid: str, group: dict[str, str]) -> None:
    now = time.time()
    st.insert_session(
        Session(
            id=sid, title="t", repo_id=repo_id, repo_name="r", branch=f"pa/{sid}", base_ref="main",
            base_commit="0" * 40, worktree=f"/tmp/{sid}", agent="command", model=None,
            status=Status.QUEUED, agent_session_id=None, options={"group": group},
            created_at=now, updated_at=now,
        )
    )


def test_groups_tasks_and_their_moves(pa_home: Path, tmp_path: Path) -> None:
    """issue 15: a group is made with its tasks in one step; names are unique; a task
    moves only from the state the mover expects; a crash's orphan session is found."""
    st = Store(pa_home)
    repo = st.add_repo(str(tmp_path), "r", "main")
    g = st.create_group("plan", "p1", repo.id, {"file": "x"}, [("a", {"prompt": "A"}), ("b", {})])
    assert (g.kind, g.name, g.state) == ("plan", "p1", "running")
    assert st.group("p1").id == g.id == st.group(g.id).id
    assert [t.key for t in st.group_tasks(g.id)] == ["a", "b"]
    assert st.group_task(g.id, "a").spec == {"prompt": "A"}
    with pytest.raises(UsageError, match="exists already"):
        st.create_group("plan", "p1", repo.id, {}, [])
    with pytest.raises(NotFound):
        st.group("nosuch")

    # Two schedulers racing for task a: one wins.
    assert st.move_task(g.id, "a", "starting", expect=["waiting"])
    assert not st.move_task(g.id, "a", "starting", expect=["waiting"])
    # The crash came after the session was made, before the task recorded it.
    _session(st, repo.id, "s1", {"id": g.id, "key": "a"})
    assert st.task_session(g.id, "a") == "s1" and st.task_session(g.id, "b") is None
    assert st.move_task(g.id, "a", "running", expect=["starting"], session_id="s1")
    t = st.group_task(g.id, "a")
    assert (t.state, t.session_id) == ("running", "s1") and t.started_at
    assert st.task_of_session("s1") == t
    assert st.move_task(g.id, "a", "done", outcome={"summary": "ok"})
    assert st.move_task(g.id, "a", "merged", expect=["done"])
    t = st.group_task(g.id, "a")
    assert t.outcome == {"summary": "ok"} and t.ended_at and t.merged_at
    extra = st.add_group_task(g.id, "judge", {"agent": "claude"})
    assert extra.position == 2 and extra.state == "waiting"
    assert [x.name for x in st.groups("plan")] == ["p1"] and st.groups("map") == []
    assert st.set_group(g.id, state="stopped").state == "stopped"
    with pytest.raises(ValueError):
        st.move_task(g.id, "a", "nonsense")
    st.close()
