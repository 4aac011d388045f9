"""issue 14 §6: every store query behind the list and filter routes finds its rows through an
index on the real schema (``EXPLAIN QUERY PLAN``), so 1,000 sessions and their events are not
walked for one answer.

The queries are the ones the store really runs: each route's store call is made with a
trace on the connection, and every SELECT it ran is explained.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.models import Session, Status
from parallel_agents.store import Store

TABLES = {"sessions", "events", "turns", "checks", "checkpoints", "repos"}


def _fill(store: Store) -> list[str]:
    a = store.add_repo("a", "/nonexistent/a", "main")
    b = store.add_repo("b", "/nonexistent/b", "main")
    store.set_repo_uid(a.id, "uid-a")
    now = time.time()
    ids = []
    for i in range(40):
        r = a if i % 2 else b
        sid = f"{i:02x}c0ffee"
        store.insert_session(
            Session(
                id=sid,
                title=f"task {i}",
                repo_id=r.id,
                repo_name=r.name,
                branch=f"pa/{sid}",
                base_ref="main",
                base_commit="0" * 40,
                worktree=f"/nonexistent/wt/{sid}",
                agent="command",
                model=None,
                status=Status.IDLE if i % 3 else Status.RUNNING,
                agent_session_id=None,
                created_at=now + i,
                updated_at=now + i,
            )
        )
        with store.tx() as db:
            store.add_turn(db, sid, "p", {})
            store.append_events(db, sid, 1, [("output", {"text": str(n)}, None) for n in range(5)])
        store.record_check(sid, 1, "0" * 40, "true", True, 0, False, 0.1, "", {"ok": True})
        ids.append(sid)
    return ids


def _plans(store: Store, call: Callable[[], Any]) -> list[tuple[str, list[str]]]:
    """Each SELECT that ``call`` ran on the store's connection, with its query plan."""
    ran: list[str] = []
    store.db.set_trace_callback(ran.append)
    try:
        call()
    finally:
        store.db.set_trace_callback(None)
    out = []
    for sql in ran:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        rows = store.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        out.append((sql, [str(r["detail"]) for r in rows]))
    assert out, "the call ran no SELECT"
    return out


def _full_scans(plan: list[str]) -> list[str]:
    """Plan lines that walk a whole table without an index (a subquery's own rows aside)."""
    sub = {m.group(1) for ln in plan if (m := re.match(r"(?:MATERIALIZE|CO-ROUTINE) (\w+)", ln))}
    bad = []
    for ln in plan:
        m = re.match(r"SCAN (\w+)(.*)", ln)
        if m and m.group(1) not in sub and m.group(1) != "CONSTANT" and "INDEX" not in m.group(2):
            bad.append(ln)
    return bad


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "home")
    yield st  # type: ignore[misc]
    st.close()


def test_list_and_filter_queries_use_an_index(store: Store) -> None:
    """issue 14 §6: no full table scan where an index fits, and each filter uses its index."""
    ids = _fill(store)
    sid = ids[7]
    repo_a = store.repo_by_name("a")
    assert repo_a is not None
    live = [st for st in Status if st.live]
    # (what, the store call a route makes, an index its plan must name or None)
    cases: list[tuple[str, Callable[[], Any], str | None]] = [
        ("GET /sessions?all=1", lambda: store.sessions(), "sessions_created"),
        ("GET /sessions?status=", lambda: store.sessions(statuses=[Status.RUNNING]), "sessions_status"),
        ("GET /sessions?repo=", lambda: store.sessions(repo_id=repo_a.id), "sessions_repo"),
        ("GET /sessions (live, repo)", lambda: store.sessions(statuses=live, repo_id=repo_a.id), None),
        ("GET /sessions checks", store.check_summaries, None),
        ("GET /sessions/{id}", lambda: store.resolve_session(sid[:3]), "sqlite_autoindex_sessions_1"),
        ("GET /sessions/{id} turns", lambda: store.turns(sid), None),
        (
            "GET /sessions/{id}/events",
            lambda: store.events(sid, after_seq=2, limit=500),
            "sqlite_autoindex_events_1",
        ),
        (
            "GET /sessions/{id}/events?kinds=",
            lambda: store.events(sid, after_seq=0, kinds=["output"], limit=500),
            "sqlite_autoindex_events_1",
        ),
        (
            "GET /events?kinds=check",
            lambda: store.events(after_id=0, kinds=["check"], limit=10_000),
            "events_kind",
        ),
        ("GET /events", lambda: store.events(after_id=3, limit=500), None),
        ("GET /stream (newest id)", store.max_event_id, None),
        ("GET /repos", store.repos, None),
        ("repo by name", lambda: store.repo_by_name("a"), None),
        ("repo by path", lambda: store.repo_by_path("/nonexistent/a"), None),
        ("repo by uid", lambda: store.repo_by_uid("uid-a"), "repos_uid"),
    ]
    problems = []
    for what, call, index in cases:
        for sql, plan in _plans(store, call):
            scans = _full_scans(plan)
            if scans:
                problems.append(f"{what}: {scans} in {sql!r}")
            if index is not None and not any(index in ln for ln in plan):
                problems.append(f"{what}: no {index} in {plan} for {sql!r}")
    assert not problems, "\n".join(problems)


def test_the_unfiltered_list_needs_no_sort(store: Store) -> None:
    """issue 14 §6: the whole list comes in creation order straight from its index."""
    _fill(store)
    for _sql, plan in _plans(store, lambda: store.sessions()):
        assert not any("TEMP B-TREE" in ln for ln in plan), plan


def test_the_indexes_are_a_named_migration(store: Store) -> None:
    """issue 14 §6: the indexes arrive by a named step, on new and existing databases."""
    assert "006_list_indexes" in store.applied_migrations()
    names = {
        r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert {"sessions_created", "sessions_repo", "events_kind", "repos_uid"} <= names
    assert isinstance(store.db, sqlite3.Connection)
